"""Two service processes, signals for the same customers on different topics at the same moment."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.signal_mix import MixedSignal, publish_mix
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import ServiceProcess, eventually, make_settings

CUSTOMERS = 300


async def test_two_instances_never_open_two_cases_for_one_customer(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, batch_max_records=50)
    first = ServiceProcess(settings, tmp_path, "first").start()
    second = ServiceProcess(settings, tmp_path, "second").start()
    try:

        async def both_consuming() -> bool:
            a = await first.metric("recovery_assigned_partitions")
            b = await second.metric("recovery_assigned_partitions")
            return a > 0 and b > 0 and a + b == 5 * settings.topic_partitions

        await eventually(both_consuming, timeout=120, what="both instances to share the partitions")
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        signals = []
        for n in range(CUSTOMERS):
            customer = f"race-{n}"
            signals.append(
                MixedSignal(SignalKind.COMPLAINT, customer, f"c-{n}", now, {"text": "It broke again."})
            )
            signals.append(MixedSignal(SignalKind.NPS, customer, f"n-{n}", now, {"score": 1}))
        await publish_mix(producer, settings.signal_topics(), signals, structured_every=0)

        async def all_applied() -> bool:
            return await db.fetchval("SELECT count(*) FROM signal_log") == 2 * CUSTOMERS

        await eventually(all_applied, timeout=120, what="every signal applied")
        per_customer = await db.fetch("SELECT customer_id, count(*) AS cases FROM cases GROUP BY customer_id")
        assert len(per_customer) == CUSTOMERS
        assert {r["cases"] for r in per_customer} == {1}
        sizes = await db.fetch("SELECT (state->>'signal_count')::int AS n FROM cases")
        assert {r["n"] for r in sizes} == {2}
        gaps = await db.fetchval(
            "SELECT count(*) FROM (SELECT stream_id, max(version) AS v, count(*) AS n FROM events"
            " GROUP BY stream_id) s WHERE v <> n"
        )
        assert gaps == 0
    finally:
        first.stop()
        second.stop()
