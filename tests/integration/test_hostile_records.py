"""Hostile records interleaved with valid signals through the real consumer, broker and database.

Every valid signal is applied exactly once, every invalid record reaches the dead-letter topic with its
original bytes, and the consumer never stops.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import service.bootstrap as bootstrap
from service.app.intake import IntakeResult
from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import Signal, SignalKind
from tests.infra import Kafka
from tests.support import eventually, signal_event, wait_until_ready

VALID_DATA = {
    SignalKind.COMPLAINT: {"text": "The engineer left the boiler leaking."},
    SignalKind.NPS: {"score": 2},
    SignalKind.REVIEW: {"rating": 1},
    SignalKind.CALLBACK: {"original_job_id": "job-1"},
    SignalKind.TICKET: {"ticket_id": "T-1", "priority": "urgent"},
}
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Outgoing:
    kind: SignalKind
    headers: Headers
    value: bytes
    valid: bool
    key: tuple[str, str] | None = None  # (source, id) of a valid signal


def _valid(kind: SignalKind, customer: str, structured: bool) -> Outgoing:
    signal_id = uuid.uuid4().hex
    headers, value = signal_event(
        kind, customer, VALID_DATA[kind], signal_id=signal_id, structured=structured
    )
    return Outgoing(kind, headers, value, True, ("test-upstream", signal_id))


def _with_attribute(kind: SignalKind, name: str, raw: bytes, structured: bool) -> Outgoing:
    """A valid event but for one attribute, set to raw text (binary header or structured member)."""
    headers, value = signal_event(kind, "cust-h", VALID_DATA[kind], structured=structured)
    if structured:
        event = json.loads(value)
        event[name] = raw.decode("utf-8", "surrogateescape")
        value = json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogateescape")
    else:
        headers = [(k, raw if k == f"ce_{name}" else v) for k, v in headers]
    return Outgoing(kind, headers, value, False)


def _with_data(kind: SignalKind, data_json: bytes, structured: bool) -> Outgoing:
    """A valid envelope around raw data bytes."""
    headers, value = signal_event(kind, "cust-h", VALID_DATA[kind], structured=structured)
    if structured:
        marker = b'"__data__"'
        event = json.loads(value)
        event["data"] = "__data__"
        value = json.dumps(event).encode().replace(marker, data_json)
    else:
        value = data_json
    return Outgoing(kind, headers, value, False)


kinds = st.sampled_from(list(SignalKind))
modes = st.booleans()
bad_ids = st.sampled_from(
    [b"a\x00b", b"line\nbreak", b"\x7f", "x\u0085y".encode(), b"i" * 10_000, b"\xff\xfe", b""]
)
bad_times = st.sampled_from(
    [b"9999-12-31T23:00:00Z", b"0001-01-01T00:00:00Z", b"2026-13-01T00:00:00Z", b"yesterday", b"\xc3("]
)
bad_data = st.sampled_from(
    [
        b'{"customer_id": "c", "score": NaN}',
        b'{"customer_id": "c", "score": Infinity, "rating": -Infinity}',
        b'{"customer_id": "c", "score": 1e400, "rating": 99999999999999999999999999}',
        b'{"customer_id": "c", "score": "2", "rating": "1", "text": 7, "ticket_id": []}',
        b'{"customer_id": 42}',
        b'{"customer_id": "c\\u0000d", "score": 1, "rating": 1, "text": "t", "ticket_id": "t", "original_job_id": "j"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
        b"\xff\xfe\xfd",
        b"",
        b"null",
        b'"just a string"',
        b'{"customer_id": "c", "score": 2, "score": 3}',
        b'{"customer_id": "c", "amount_at_stake": {"amount": "1E+1", "currency": "EUR"}, "score": 1,'
        b' "rating": 1, "text": "t", "ticket_id": "t", "original_job_id": "j"}',
    ]
)


@st.composite
def hostile(draw: st.DrawFn) -> Outgoing:
    kind, structured = draw(kinds), draw(modes)
    which = draw(st.integers(0, 6))
    if which == 0:
        return _with_attribute(
            kind, draw(st.sampled_from(["id", "source", "subject"])), draw(bad_ids), structured
        )
    if which == 1:
        return _with_attribute(kind, "time", draw(bad_times), structured)
    if which == 2:
        return _with_data(kind, draw(bad_data), structured)
    if which == 3:  # headers missing, duplicated, valueless or not UTF-8
        headers, value = signal_event(kind, "cust-h", VALID_DATA[kind])
        mangle = draw(st.integers(0, 3))
        if mangle == 0:
            headers = [h for h in headers if h[0] != "ce_id"]
        elif mangle == 1:
            headers = [*headers, ("ce_id", b"another")]
        elif mangle == 2:
            headers = [(k, b"" if k == "ce_type" else v) for k, v in headers]
        else:
            headers = [(k, b"\xff" if k == "ce_specversion" else v) for k, v in headers]
        return Outgoing(kind, headers, value, False)
    if which == 4:  # arbitrary bytes with the binary content type
        raw = draw(st.binary(max_size=200))
        headers, _ = signal_event(kind, "cust-h", VALID_DATA[kind])
        return Outgoing(kind, headers, raw, False)
    if which == 5:  # another kind's type on this topic
        other = draw(kinds.filter(lambda k: k != kind))
        headers, value = signal_event(other, "cust-h", VALID_DATA[other], structured=structured)
        return Outgoing(kind, headers, value, False)
    text = draw(st.text(min_size=1, max_size=50))  # free text of any characters is fine, but the subject lies
    headers, value = signal_event(kind, "cust-h", {**VALID_DATA[kind], "text": text}, structured=structured)
    headers = [(k, b"someone-else" if k == "ce_subject" else v) for k, v in headers]
    if structured:
        event = json.loads(value)
        event["subject"] = "someone-else"
        value = json.dumps(event).encode()
    return Outgoing(kind, headers, value, False)


@st.composite
def mixes(draw: st.DrawFn) -> list[Outgoing]:
    customers = [f"cust-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    valid = [
        _valid(draw(kinds), draw(st.sampled_from(customers)), draw(modes))
        for _ in range(draw(st.integers(1, 8)))
    ]
    bad = draw(st.lists(hostile(), min_size=1, max_size=12))
    return draw(st.permutations(valid + bad))


def _largest_value(headers: Headers, limit: int) -> int:
    """The longest value a producer with this request limit sends under the key b"cust" and these headers."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if DefaultRecordBatchBuilder.estimate_size_in_bytes(b"cust", b" " * middle, headers) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


@pytest.fixture
async def dlq(kafka: Kafka, settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        settings.topic_dlq, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


class DeadLetters:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.by_origin: dict[tuple[str, int, int], list[tuple[bytes | None, dict[str, bytes]]]] = {}

    async def read(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=300)
        for record in (r for rs in batch.values() for r in rs):
            headers = dict(record.headers)
            origin = (
                headers["dlq_topic"].decode(),
                int(headers["dlq_partition"]),
                int(headers["dlq_offset"]),
            )
            self.by_origin.setdefault(origin, []).append((record.value, headers))


async def _send_all(
    producer: AIOKafkaProducer, settings: Settings, mix: list[Outgoing]
) -> list[tuple[Outgoing, tuple[str, int, int]]]:
    topics = {kind: topic for topic, kind in settings.signal_topics().items()}
    sent = []
    for out in mix:
        meta = await producer.send_and_wait(topics[out.kind], out.value, key=b"cust", headers=out.headers)
        sent.append((out, (meta.topic, meta.partition, meta.offset)))
    return sent


async def _stored_offsets(database_url: str, group: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1", group
        )
    finally:
        await conn.close()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def _applied(database_url: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT source, signal_id, count(*) AS n FROM signal_log"
            " WHERE (source, signal_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) GROUP BY 1, 2",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
    finally:
        await conn.close()
    return {(r["source"], r["signal_id"]): r["n"] for r in rows}


async def _check_mix(
    mix: list[Outgoing],
    service: Service,
    producer: AIOKafkaProducer,
    settings: Settings,
    database_url: str,
    letters: DeadLetters,
) -> None:
    sent = await _send_all(producer, settings, mix)
    ends: dict[tuple[str, int], int] = {}
    for _, (topic, partition, offset) in sent:
        ends[(topic, partition)] = max(offset + 1, ends.get((topic, partition), 0))

    async def consumed() -> bool:
        stored = await _stored_offsets(database_url, settings.consumer_group)
        return all(stored.get(tp, 0) >= end for tp, end in ends.items())

    await eventually(consumed, what="the stored offsets past every record sent")
    invalid = [(out, origin) for out, origin in sent if not out.valid]

    async def all_dead_lettered() -> bool:
        await letters.read()
        return all(origin in letters.by_origin for _, origin in invalid)

    await eventually(all_dead_lettered, what="every invalid record on the dead-letter topic")
    for out, origin in invalid:
        value, headers = letters.by_origin[origin][0]
        assert headers.get("dlq_reference") == b"true" or value == out.value
        assert headers["dlq_reason"]
    keys = [out.key for out, _ in sent if out.key is not None]
    assert await _applied(database_url, keys) == {k: 1 for k in keys}
    assert not any(origin in letters.by_origin for out, origin in sent if out.valid)
    assert service.alive(), service.failures()


@hypothesis_settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=False,
)
@given(mix=mixes())
async def test_hostile_records_go_to_the_dead_letter_topic_and_every_valid_signal_is_applied_once(
    mix: list[Outgoing],
    service: Service,
    producer: AIOKafkaProducer,
    settings: Settings,
    database_url: str,
    dlq: AIOKafkaConsumer,
) -> None:
    await _check_mix(mix, service, producer, settings, database_url, DeadLetters(dlq))


async def test_an_invalid_record_too_large_to_dead_letter_whole_goes_as_a_reference(
    service: Service, kafka: Kafka, settings: Settings, database_url: str, dlq: AIOKafkaConsumer
) -> None:
    big = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap,
        enable_idempotence=kafka.idempotent_producer,
        max_request_size=1_048_576,
    )
    await big.start()
    try:
        headers, _ = signal_event(SignalKind.NPS, "cust-big", VALID_DATA[SignalKind.NPS])
        # the largest value that fits the producer's request limit: with the dlq_* headers added it does not
        size = _largest_value(headers, 1_048_576)
        mix = [
            Outgoing(SignalKind.NPS, headers, b"{" + b" " * (size - 1), False),
            _valid(SignalKind.NPS, "cust-big", False),
        ]
        letters = DeadLetters(dlq)
        await _check_mix(mix, service, big, settings, database_url, letters)
    finally:
        await big.stop()
    (value, headers_out), *_ = next(iter(v for k, v in letters.by_origin.items()))
    assert headers_out["dlq_reference"] == b"true"
    assert value is None
    assert int(headers_out["dlq_original_bytes"]) > size


async def test_a_record_that_fails_in_the_database_is_isolated_and_the_rest_of_its_batch_applied(
    kafka: Kafka,
    settings: Settings,
    database_url: str,
    producer: AIOKafkaProducer,
    dlq: AIOKafkaConsumer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_apply = bootstrap.apply_signals

    async def apply_failing_on_poison(signals: list[Signal], *args: object, **kwargs: object) -> IntakeResult:
        if any(s.id.startswith("poison") for s in signals):
            raise ZeroDivisionError("a bug that one record triggers")
        return await real_apply(signals, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bootstrap, "apply_signals", apply_failing_on_poison)
    running = Service(settings)
    await running.start()
    try:
        await wait_until_ready(running)
        mix = [_valid(SignalKind.NPS, "cust-p", False) for _ in range(9)]
        headers, value = signal_event(
            SignalKind.NPS, "cust-p", {"score": 1}, signal_id="poison-1", at=datetime.now(UTC)
        )
        mix.insert(4, Outgoing(SignalKind.NPS, headers, value, False))
        letters = DeadLetters(dlq)
        await _check_mix(mix, running, producer, settings, database_url, letters)
        (_, reason_headers), *_ = [v for k, v in letters.by_origin.items()][0]
        assert reason_headers["dlq_reason"] == b"processing_failed: ZeroDivisionError"
    finally:
        await running.stop()
