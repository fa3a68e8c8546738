"""OpenTelemetry tracing: the tracer the adapters use, its set-up from the standard OTEL_* variables, and the
strict W3C Trace Context checks for a `traceparent` that comes in with a signal or a request.

Off by default: until `configure_tracing` finds an exporter in OTEL_TRACES_EXPORTER (`otlp`, `console`),
the tracer is the API's no-op one and the adapters skip building links and attributes, so the hot path pays
one boolean test per batch. (The OpenTelemetry SDK's own default for OTEL_TRACES_EXPORTER is `otlp`; here an
unset variable means no export, so a deployment never sends spans to a collector it did not ask for.)

A traceparent carried with a signal or a command is stored with the events it causes, whether or not this
process exports spans, so a trace continues through the event log into the records the relay publishes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Link, NoOpTracer, SpanContext, TraceFlags, Tracer, TraceState

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

TRACEPARENT_LENGTH = 55
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
"""W3C Trace Context: version-traceid-parentid-flags in lowercase hex; version ff and all-zero ids are invalid."""
TRACESTATE_MAX_LENGTH = 512
"""W3C Trace Context: a tracestate longer than 512 characters may be dropped; here it always is."""
_TRACESTATE_MEMBERS = 32
_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)
_KEY = r"(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER = re.compile(f"{_KEY}={_VALUE}")
MAX_LINKS = 64
"""At most this many links on one span: a batch of thousands of signals links to its first 64 distinct traces."""
SCOPE = "recovery-loop"


def valid_traceparent(value: object) -> str | None:
    """The traceparent as version 00 if it is a valid W3C one, else None (an invalid one is ignored, never an
    error). A later version is read as its version-00 fields; one with extra fields is not accepted."""
    if not isinstance(value, str) or len(value) != TRACEPARENT_LENGTH or _TRACEPARENT.match(value) is None:
        return None
    version, trace_id, span_id, flags = value.split("-")
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return value if version == "00" else f"00-{trace_id}-{span_id}-{flags}"


def valid_tracestate(value: object) -> str | None:
    """The tracestate without empty members if it is a valid W3C one of at most 512 characters, else None."""
    if not isinstance(value, str) or len(value) > TRACESTATE_MAX_LENGTH:
        return None
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    if (
        not members
        or len(members) > _TRACESTATE_MEMBERS
        or any(_MEMBER.fullmatch(m) is None for m in members)
    ):
        return None
    return ",".join(members)


def span_context(traceparent: str, tracestate: str | None = None) -> SpanContext:
    """The remote span context a valid traceparent (and tracestate) names."""
    _, trace_id, span_id, flags = traceparent.split("-")
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)), state)


def traceparent_of(context: SpanContext) -> str | None:
    """A span context as a version-00 traceparent; None for the invalid context of a no-op span."""
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def links_to(contexts: Iterable[tuple[str | None, str | None]]) -> list[Link]:
    """Links to the distinct traceparents among (traceparent, tracestate) pairs, at most MAX_LINKS of them."""
    links: dict[str, Link] = {}
    for parent, state in contexts:
        if parent is not None and parent not in links:
            links[parent] = Link(span_context(parent, state))
            if len(links) == MAX_LINKS:
                break
    return list(links.values())


@dataclass
class _State:
    tracer: Tracer
    on: bool
    provider: object | None = None  # the SDK's TracerProvider when tracing is on


_state = _State(NoOpTracer(), False)


def tracer() -> Tracer:
    """The tracer spans are made with: the no-op tracer unless tracing was switched on."""
    return _state.tracer


def tracing_on() -> bool:
    """Whether spans are recorded: adapters build links and attributes only then."""
    return _state.on


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Trace with this provider from now on (None: the no-op tracer again). Tests pass one with an
    in-memory exporter; configure_tracing passes the one it builds from the environment."""
    _state.provider = provider
    _state.on = provider is not None
    _state.tracer = NoOpTracer() if provider is None else provider.get_tracer(SCOPE)


class TracingConfigError(ValueError):
    """An OTEL_* variable this service cannot honour; the message names it."""


def configure_tracing() -> bool:
    """Switch tracing on when OTEL_TRACES_EXPORTER names exporters (and OTEL_SDK_DISABLED is not true).

    Everything else comes from the SDK's standard variables: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    (service.name defaults to recovery-loop), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* for the batch processor,
    OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION for the OTLP/HTTP exporter.
    """
    environ = os.environ  # the SDK reads the rest of the OTEL_* variables from it too
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or not names or names == ["none"]:
        use_provider(None)
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [_exporter(name, environ) for name in names if name != "none"]
    resource = Resource.create()  # OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else ours
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SCOPE}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    use_provider(provider)
    return True


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in (None, "http/protobuf"):
        name = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL"
        raise TracingConfigError(f"{name}: only http/protobuf is installed, not {protocol!r}")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def shutdown_tracing() -> None:
    """Export what is still buffered, then stop (at the end of the process's lifespan)."""
    shutdown = getattr(_state.provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
