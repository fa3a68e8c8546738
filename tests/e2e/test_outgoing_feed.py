"""The outgoing feed with the service as processes: timers racing across instances, a relay killed mid-stream."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.signal_mix import MixedSignal, publish_mix, signal_mix
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import ServiceProcess, eventually, make_settings, relay_caught_up

WINDOWS = {s: "PT60S" for s in ("minor", "moderate", "major", "critical")}
LONG_FIRST_RESPONSE = {c: "PT1H" for c in ("phone", "email", "chat", "social", "web", "in_person")}


async def read_all(kafka: Kafka, topic: str, until: int) -> list:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    try:

        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            records.extend(r for rs in batch.values() for r in rs)
            return len(records) >= until

        await eventually(enough, timeout=120, what=f"{until} records on {topic}")
        batch = await consumer.getmany(timeout_ms=1000)  # anything beyond what we waited for
        records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    return records


async def test_two_instances_fire_exactly_one_breach_for_each_of_a_thousand_cases_due_together(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka,
        database_url,
        sla_resolution=WINDOWS,
        sla_first_response=LONG_FIRST_RESPONSE,
        batch_max_records=200,
    )
    first = ServiceProcess(settings, tmp_path, "first").start()
    second = ServiceProcess(settings, tmp_path, "second").start()
    try:
        await eventually(first.url_ready, timeout=60, what="the first instance")
        await eventually(second.url_ready, timeout=60, what="the second instance")
        at = datetime.now(UTC) - timedelta(seconds=45)  # every deadline falls 15 s from now
        signals = [MixedSignal(SignalKind.NPS, f"due-{n}", f"due-{n}", at, {"score": 2}) for n in range(1000)]
        await publish_mix(producer, settings.signal_topics(), signals, structured_every=0)

        async def all_breached() -> bool:
            fired = await db.fetchval(
                "SELECT count(*) FROM sla_timers WHERE sla = 'resolution' AND kind = 'breach' AND fired_at IS NOT NULL"
            )
            return fired == 1000 and await relay_caught_up(db)

        await eventually(all_breached, timeout=180, what="1,000 breaches fired and published")
        records = await read_all(kafka, settings.topic_sla, until=2000)
    finally:
        first.stop()
        second.stop()
    breaches = [r for r in records if dict(r.headers)["ce_type"] == b"recovery.sla.breached"]
    assert len(breaches) == 1000
    assert len({dict(r.headers)["ce_id"] for r in breaches}) == 1000
    assert {json.loads(r.value)["case_id"] for r in breaches} == set(
        await db.fetchval("SELECT array_agg(case_id) FROM cases")
    )
    assert await db.fetchval("SELECT count(*) FROM events WHERE type = 'case.sla_breached'") == 1000


async def test_a_relay_killed_mid_stream_republishes_and_never_skips(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, batch_max_records=500)
    service = ServiceProcess(settings, tmp_path, "service").start()
    try:
        await eventually(service.url_ready, timeout=60, what="the service")
        await publish_mix(
            producer, settings.signal_topics(), list(signal_mix(20_000, customers=3_000, seed=5))
        )

        async def mid_stream() -> bool:
            position = await db.fetchval("SELECT coalesce(max(position), 0) FROM relay_positions")
            head = await db.fetchval("SELECT coalesce(max(position), 0) FROM events")
            return 0 < position < head

        for _ in range(2):
            await eventually(mid_stream, timeout=120, what="the relay part-way through the log")
            service.kill()
            service.start()
        applied = lambda: _count(db, "SELECT count(*) FROM signal_log")  # noqa: E731
        await eventually(lambda: _equals(applied, 20_000), timeout=240, what="every signal applied")
        await eventually(lambda: relay_caught_up(db), timeout=120, what="the relay to catch up")
        stored = await db.fetch(
            "SELECT event_id::text, stream_id, version FROM events WHERE type NOT LIKE 'case.sla%'"
        )
        records = await read_all(kafka, settings.topic_case_events, until=len(stored))
    finally:
        service.stop()
    expected = {r["event_id"]: (r["stream_id"], r["version"]) for r in stored}
    ids = [dict(record.headers)["ce_id"].decode() for record in records]
    assert set(ids) == set(expected), "an event in the store never reached the topic, or one was invented"
    first_seen: dict[str, list[int]] = defaultdict(list)  # versions per case, in order of first arrival
    for event_id in dict.fromkeys(ids):
        case_id, version = expected[event_id]
        first_seen[case_id].append(version)
    assert all(v == sorted(v) for v in first_seen.values()), "events of a case arrived out of order"


async def _count(db: asyncpg.Connection, sql: str) -> int:
    return int(await db.fetchval(sql))


async def _equals(count, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await count() == expected


async def test_consumers_and_the_relay_can_run_as_separate_processes(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, batch_max_records=200)
    consuming = ServiceProcess(settings.model_copy(update={"relay": False}), tmp_path, "consume").start()
    relaying = ServiceProcess(settings.model_copy(update={"consume": False}), tmp_path, "relay").start()
    try:
        await eventually(consuming.url_ready, timeout=60, what="the consuming process")
        await eventually(
            relaying.url_ready, timeout=60, what="the relaying process (ready without consuming)"
        )
        await publish_mix(producer, settings.signal_topics(), list(signal_mix(500, customers=100, seed=11)))
        applied = lambda: _count(db, "SELECT count(*) FROM signal_log")  # noqa: E731
        await eventually(lambda: _equals(applied, 500), timeout=120, what="every signal applied")
        await eventually(lambda: relay_caught_up(db), timeout=120, what="the relay to publish the log")
        assert await relaying.metric("recovery_relay_leader") == 1
        assert await consuming.metric("recovery_relay_leader") == 0
        assert await relaying.metric("recovery_assigned_partitions") == 0
        assert await consuming.metric("recovery_assigned_partitions") == 5 * settings.topic_partitions
    finally:
        consuming.stop()
        relaying.stop()
