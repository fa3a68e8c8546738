"""A span per HTTP request, and the trace context a command's events carry on, as a pure ASGI middleware.

The request's `traceparent` header (W3C Trace Context; an invalid one is ignored) is the parent of the
request's SERVER span when tracing is on; the events a command causes then store that span's context, so
whoever consumes them continues the trace below this service's span. With tracing off there is no span and
the events store the header's traceparent itself. No FastAPI auto-instrumentation: it adds a dependency
tree and ASGI spans per send/receive for what these few lines do; the route template the router leaves in
the scope names the span (`POST /v1/cases/{case_id}/resolve`), so names stay bounded.

Probes and scrapes (/healthz, /readyz, /metrics) are not traced: they come every few seconds and say nothing
about a request's path through the service.
"""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.tracing import (
    span_context,
    traceparent_of,
    tracer,
    tracing_on,
    valid_traceparent,
    valid_tracestate,
)

UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_TRACEPARENT: ContextVar[str | None] = ContextVar("request_traceparent", default=None)


def request_traceparent() -> str | None:
    """The trace context the current request's events carry (None outside a request, or without one)."""
    return _TRACEPARENT.get()


class TraceRequests:
    """SERVER spans named `<method> <route template>`, with the response status; W3C traceparent in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        parent = valid_traceparent(_header(scope, b"traceparent"))
        if not tracing_on():
            token = _TRACEPARENT.set(parent)
            try:
                await self.app(scope, receive, send)
            finally:
                _TRACEPARENT.reset(token)
            return
        await self._traced(scope, receive, send, parent)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, parent: str | None) -> None:
        context = None
        if parent is not None:
            remote = span_context(parent, valid_tracestate(_header(scope, b"tracestate")))
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        method = scope["method"]
        with tracer().start_as_current_span(
            method, context=context, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:
            status = 500  # unless a response starts: an error that escapes is answered 500 further out

            async def send_and_note_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            token = _TRACEPARENT.set(traceparent_of(span.get_span_context()))
            try:
                await self.app(scope, receive, send_and_note_status)
            finally:
                _TRACEPARENT.reset(token)
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)


def _header(scope: Scope, name: bytes) -> str | None:
    """The header's one value as text; None when absent or repeated (then it is ignored)."""
    values = [v for k, v in scope["headers"] if k.lower() == name]
    return bytes(values[0]).decode("latin-1") if len(values) == 1 else None
