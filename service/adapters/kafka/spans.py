"""The Kafka side's spans: one per consumed batch of signals, one for the case changes it made, one per batch
the relay publishes. Never one per record: thousands of signals a second would make the tracing cost more than
the work. A batch's records belong to many traces, so, as OpenTelemetry's messaging conventions do for batch
processing, its span links to the traces its records carry (at most MAX_LINKS) instead of taking a parent.

With tracing off every function here returns the invalid span and builds nothing: one test per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from service.app.intake import IntakeResult
from service.app.ports import LoggedEvent
from service.domain.intake import Outcome
from service.domain.signals import Signal
from service.tracing import links_to, tracer, tracing_on


def batch_span(records: int, signals: Sequence[Signal], group: str) -> AbstractContextManager[Span]:
    """The CONSUMER span of one consumed batch, linked to the traces its signals were created in."""
    if not tracing_on():
        return nullcontext(INVALID_SPAN)
    return tracer().start_as_current_span(
        "process signals",
        kind=SpanKind.CONSUMER,
        links=links_to((s.traceparent, s.tracestate) for s in signals),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": group,
            "messaging.batch.message_count": records,
            "recovery.signals.decoded": len(signals),
        },
    )


def apply_span() -> AbstractContextManager[Span]:
    """The span of the batch's transaction: the case changes the batch made."""
    if not tracing_on():
        return nullcontext(INVALID_SPAN)
    return tracer().start_as_current_span("apply signals")


def describe_applied(
    span: Span, result: IntakeResult, dead_lettered: int, case_changes: Mapping[Outcome, str]
) -> None:
    """Counts on the batch's spans, and a span event per case a signal opened, escalated or reopened (the
    SDK keeps at most 128 events per span)."""
    if not span.is_recording():
        return
    outcomes = Counter(a.outcome.value for a in result.applied)
    span.set_attributes({f"recovery.signals.{outcome}": n for outcome, n in outcomes.items()})
    span.set_attributes(
        {
            "recovery.signals.duplicate": len(result.duplicates),
            "recovery.signals.dead_lettered": dead_lettered,
            "recovery.events": result.events,
            "recovery.conflicts": result.conflicts,
        }
    )
    for a in result.applied:
        name = case_changes.get(a.outcome)
        if name is not None and a.case_id is not None:
            span.add_event(name, {"case_id": a.case_id, "severity": str(a.case_severity)})


def publish_span(events: Sequence[LoggedEvent]) -> AbstractContextManager[Span]:
    """The PRODUCER span of one batch the relay publishes, linked to the traces its events continue."""
    if not tracing_on():
        return nullcontext(INVALID_SPAN)
    return tracer().start_as_current_span(
        "publish case events",
        kind=SpanKind.PRODUCER,
        links=links_to((e.traceparent, None) for e in events),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "recovery.events": len(events),
            "recovery.events.traced": sum(e.traceparent is not None for e in events),
        },
    )
