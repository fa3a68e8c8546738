"""Count and time every HTTP request by method, route template and status, as a pure ASGI middleware.

Pure ASGI rather than Starlette's BaseHTTPMiddleware, which runs the endpoint in another task and
buffers what it sends. The route label is the matched route's template (`/v1/cases/{case_id}`), which
FastAPI's router leaves in the request's scope, so the label set stays bounded whatever paths clients
ask for: a path no route matches counts as `unmatched`, a method outside HTTP's usual ones as `other`.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """`recovery_http_requests_total{method,route,status}` and `recovery_http_request_seconds{method,route}`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an error that escapes is answered 500 further out
        started = time.perf_counter()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request (set in the scope by the router)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED
