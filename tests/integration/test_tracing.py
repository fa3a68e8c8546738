"""Traces through the real broker and database: a signal's traceparent continues into the published case event,
a command's traceparent header into its event's record; the batch spans link to their signals' traces; and
with tracing off nothing is recorded and untraced events store NULL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind

from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import SignalKind
from service.tracing import tracer, use_provider
from tests.infra import Kafka
from tests.support import MANAGER, eventually, publish, signal_event


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_provider(provider)
    try:
        yield exporter
    finally:
        use_provider(None)
        provider.shutdown()


def new_traceparent() -> tuple[str, str]:
    """(trace id, traceparent) of a fresh upstream span."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


class CaseEvents:
    """Everything the relay published on the case-events topic since the start."""

    def __init__(self, kafka: Kafka, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
        )
        self.records: list[Any] = []

    async def __aenter__(self) -> CaseEvents:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def of_customer(self, customer: str, type_: str) -> Any:
        """The first published record of this type about this customer's case, once it is there."""
        return await self._first(type_, lambda r: json.loads(r.value).get("customer_id") == customer)

    async def of_case(self, case_id: str, type_: str) -> Any:
        return await self._first(type_, lambda r: r.key == case_id.encode())

    async def _first(self, type_: str, about: Callable[[Any], bool]) -> Any:
        batch = await self.consumer.getmany(timeout_ms=200)
        self.records.extend(r for rs in batch.values() for r in rs)
        return next(
            (r for r in self.records if dict(r.headers)["ce_type"] == type_.encode() and about(r)), None
        )


async def stored_traceparents(database_url: str, case_id: str) -> list[str | None]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT traceparent FROM events WHERE stream_id = $1 ORDER BY version", case_id
        )
    finally:
        await conn.close()
    return [r["traceparent"] for r in rows]


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def linked_traces(span: ReadableSpan) -> set[str]:
    return {f"{link.context.trace_id:032x}" for link in span.links}


async def test_a_signals_traceparent_crosses_the_event_log_into_the_published_case_event(
    service: Service,
    settings: Settings,
    producer: AIOKafkaProducer,
    kafka: Kafka,
    database_url: str,
    spans: InMemorySpanExporter,
) -> None:
    trace_id, traceparent = new_traceparent()
    headers, body = signal_event(SignalKind.NPS, "traced-1", {"score": 1})
    traced = [*headers, ("ce_traceparent", traceparent.encode()), ("ce_tracestate", b"upstream=1")]
    await publish(producer, settings.topic_nps, "traced-1", (traced, body))

    async with CaseEvents(kafka, settings.topic_case_events) as topic:
        record = await eventually(
            lambda: topic.of_customer("traced-1", "recovery.case.opened"), what="the published case.opened"
        )
    # the upstream's context as it came: the same trace, continued from the span that created the signal
    assert dict(record.headers)["ce_traceparent"] == traceparent.encode()
    case_id = record.key.decode()
    assert await stored_traceparents(database_url, case_id) == [traceparent]

    async def batch_linked() -> ReadableSpan | None:
        return next((s for s in named(spans, "process signals") if trace_id in linked_traces(s)), None)

    batch = await eventually(batch_linked, what="the batch span linked to the signal's trace")
    assert batch.kind is SpanKind.CONSUMER and batch.parent is None  # linked, not parented: a batch has many
    assert batch.attributes is not None and batch.attributes["messaging.batch.message_count"] >= 1
    assert batch.attributes["recovery.signals.opened"] >= 1
    [link] = [link for link in batch.links if f"{link.context.trace_id:032x}" == trace_id]
    assert link.context.trace_state.get("upstream") == "1"
    [applying] = [
        s for s in named(spans, "apply signals") if s.parent and s.parent.span_id == batch.context.span_id
    ]
    opened = [e for e in applying.events if e.name == "case_opened"]
    assert [e.attributes["case_id"] for e in opened if e.attributes] == [case_id]

    async def publish_linked() -> ReadableSpan | None:
        return next((s for s in named(spans, "publish case events") if trace_id in linked_traces(s)), None)

    published = await eventually(publish_linked, what="the relay's publish span linked to the trace")
    assert published.kind is SpanKind.PRODUCER


async def test_one_batch_span_links_to_each_signals_trace(
    service: Service, settings: Settings, producer: AIOKafkaProducer, spans: InMemorySpanExporter
) -> None:
    traces = {}
    for n in range(3):
        trace_id, traceparent = new_traceparent()
        traces[trace_id] = traceparent
        headers, body = signal_event(SignalKind.NPS, f"many-{n}", {"score": 2})
        await publish(
            producer,
            settings.topic_nps,
            f"many-{n}",
            ([*headers, ("ce_traceparent", traceparent.encode())], body),
        )

    async def all_linked() -> set[str] | None:
        linked = set().union(*(linked_traces(s) for s in named(spans, "process signals")))
        return linked if set(traces) <= linked else None

    await eventually(all_linked, what="batch spans linking every signal's trace")
    for span in named(spans, "process signals"):
        assert span.attributes is not None
        assert len(span.links) <= span.attributes["messaging.batch.message_count"]


async def test_a_commands_traceparent_header_travels_into_its_events_published_record(
    service: Service, settings: Settings, api: httpx.AsyncClient, kafka: Kafka, database_url: str
) -> None:
    assert isinstance(tracer(), NoOpTracer)  # tracing off: the header itself is what continues
    _, traceparent = new_traceparent()
    body = {"customer_id": "by-hand-1", "severity": "major", "reason": "CEO escalation"}
    opened = await api.post("/v1/cases", json=body, headers={**MANAGER, "traceparent": traceparent})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    ack = await api.post(f"/v1/cases/{case_id}/acknowledge", headers={**MANAGER, "traceparent": "00-bogus"})
    assert ack.status_code == 200, ack.text  # an invalid header is ignored, never refused
    assert await stored_traceparents(database_url, case_id) == [traceparent, None]

    async with CaseEvents(kafka, settings.topic_case_events) as topic:
        record = await eventually(
            lambda: topic.of_customer("by-hand-1", "recovery.case.opened"), what="the published case.opened"
        )
        acknowledged = await eventually(
            lambda: topic.of_case(case_id, "recovery.case.acknowledged"), what="the acknowledgement"
        )
    assert dict(record.headers)["ce_traceparent"] == traceparent.encode()
    assert "ce_traceparent" not in dict(acknowledged.headers)


async def test_with_tracing_on_a_commands_events_continue_from_its_server_span(
    service: Service, api: httpx.AsyncClient, database_url: str, spans: InMemorySpanExporter
) -> None:
    trace_id, traceparent = new_traceparent()
    body = {"customer_id": "by-hand-2", "severity": "minor", "reason": "walk-in"}
    opened = await api.post("/v1/cases", json=body, headers={**MANAGER, "traceparent": traceparent})
    assert opened.status_code == 201, opened.text
    [server] = named(spans, "POST /v1/cases")
    assert server.kind is SpanKind.SERVER and server.parent is not None
    assert f"{server.context.trace_id:032x}" == trace_id
    assert f"{server.parent.span_id:016x}" == traceparent.split("-")[2]  # the caller's span is its parent
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 201
    assert server.attributes["http.route"] == "/v1/cases"
    own = f"00-{trace_id}-{server.context.span_id:016x}-01"
    assert await stored_traceparents(database_url, opened.json()["case_id"]) == [own]
    await api.get("/healthz")  # probes are not traced
    servers = [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert servers == ["POST /v1/cases"]


async def test_with_tracing_off_nothing_is_recorded_and_untraced_or_invalid_context_stores_null(
    service: Service,
    settings: Settings,
    producer: AIOKafkaProducer,
    kafka: Kafka,
    database_url: str,
    spans: InMemorySpanExporter,
) -> None:
    use_provider(None)  # the exporter stays attached to a provider the service no longer uses
    assert isinstance(tracer(), NoOpTracer)
    await publish(
        producer, settings.topic_nps, "plain-1", signal_event(SignalKind.NPS, "plain-1", {"score": 1})
    )
    headers, body = signal_event(SignalKind.NPS, "garbled-1", {"score": 1})
    garbled = [*headers, ("ce_traceparent", b"00-not-a-trace-context")]
    await publish(producer, settings.topic_nps, "garbled-1", (garbled, body))  # accepted, not dead-lettered

    async with CaseEvents(kafka, settings.topic_case_events) as topic:
        for customer in ("plain-1", "garbled-1"):
            record = await eventually(
                lambda c=customer: topic.of_customer(c, "recovery.case.opened"), what=f"{customer}'s case"
            )
            assert "ce_traceparent" not in dict(record.headers)
            assert await stored_traceparents(database_url, record.key.decode()) == [None]
    assert spans.get_finished_spans() == ()
