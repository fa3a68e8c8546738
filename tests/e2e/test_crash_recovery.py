"""SIGKILL the service in the middle of a large backlog, again and again: nothing lost, nothing doubled."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.signal_mix import publish_mix, signal_mix
from tests.infra import Kafka
from tests.support import ServiceProcess, eventually, make_settings

BACKLOG = 30_000
KILLS = 3


async def test_sigkill_mid_backlog_loses_nothing_and_applies_nothing_twice(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, batch_max_records=500)
    service = ServiceProcess(settings, tmp_path, "service").start()
    await eventually(lambda: service.metric("recovery_assigned_partitions"), timeout=120, what="the consumer")
    signals = list(signal_mix(BACKLOG, customers=2_000, seed=11))
    ends = await publish_mix(producer, settings.signal_topics(), signals)

    async def applied() -> int:
        return int(await db.fetchval("SELECT count(*) FROM signal_log"))

    for kill in range(1, KILLS + 1):
        threshold = BACKLOG * kill // (KILLS + 2)
        await eventually(lambda t=threshold: _at_least(applied, t), timeout=180, what=f"{threshold} applied")
        assert await applied() < BACKLOG, "the backlog drained before the kill: make it larger"
        service.kill()
        service.start()

    await eventually(lambda: _at_least(applied, BACKLOG), timeout=300, what="the whole backlog")
    service.stop()

    assert await applied() == len({(s.signal_id) for s in signals})
    failures = await db.fetchval("SELECT count(*) FROM signal_log WHERE severity IS NOT NULL")
    counted_on_cases = await db.fetchval("SELECT sum((state->>'signal_count')::int) FROM cases")
    carried = await db.fetchval(
        "SELECT count(DISTINCT (data->'signal'->>'source', data->'signal'->>'id')) FROM events"
        " WHERE data->'signal' IS NOT NULL AND json_typeof(data->'signal') = 'object'"
    )
    assert counted_on_cases == carried == failures
    carrying_a_signal = await db.fetchval(
        "SELECT count(*) FROM events WHERE type IN ('case.opened', 'case.signal_attached', 'case.reopened')"
    )
    assert carrying_a_signal == failures
    stored = {
        (r["topic"], r["partition"]): r["next_offset"]
        for r in await db.fetch("SELECT topic, partition, next_offset FROM consumer_offsets")
    }
    assert stored == ends


async def _at_least(count, threshold: int) -> bool:  # type: ignore[no-untyped-def]
    return await count() >= threshold
