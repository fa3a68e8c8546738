"""SIGTERM the service in the middle of a backlog: it drains and exits within the grace period the
deployment gives it, and after a restart nothing is lost and nothing is applied twice.
tests/e2e/test_crash_recovery.py is the SIGKILL version of this test."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.signal_mix import publish_mix, signal_mix
from tests.infra import Kafka
from tests.support import ServiceProcess, eventually, make_settings

BACKLOG = 20_000
# terminationGracePeriodSeconds in deploy/k8s/base/deployment.yaml and stop_grace_period in
# deploy/compose.yaml; past it the orchestrator sends SIGKILL.
GRACE_SECONDS = 45


async def test_sigterm_mid_backlog_drains_within_the_grace_period_and_loses_nothing(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, batch_max_records=500)
    service = ServiceProcess(settings, tmp_path, "service").start()
    try:
        await eventually(
            lambda: service.metric("recovery_assigned_partitions"), timeout=120, what="the consumer"
        )
        signals = list(signal_mix(BACKLOG, customers=2_000, seed=23))
        ends = await publish_mix(producer, settings.signal_topics(), signals)

        async def applied() -> int:
            return int(await db.fetchval("SELECT count(*) FROM signal_log"))

        async def a_quarter_applied() -> bool:
            return await applied() >= BACKLOG // 4

        await eventually(a_quarter_applied, timeout=180, what=f"{BACKLOG // 4} applied")
        assert await applied() < BACKLOG, "the backlog drained before SIGTERM: make it larger"

        assert service.process is not None
        sent = time.monotonic()
        service.process.send_signal(signal.SIGTERM)

        async def exited() -> bool:
            return service.process is not None and service.process.poll() is not None

        await eventually(exited, timeout=GRACE_SECONDS, what="the process to exit after SIGTERM")
        took = time.monotonic() - sent
        assert took < GRACE_SECONDS
        # uvicorn re-raises the signal once its graceful shutdown is done, so the status says "ended by
        # SIGTERM" (143 in a shell; what Kubernetes and compose expect of a stopped container). That
        # the drain ran to its end is in the log: the service closed, then uvicorn finished.
        assert service.process.returncode in (0, -signal.SIGTERM), service.log_tail()
        log = service.log_path.read_text()
        assert '"service_stopped"' in log and "Finished server process" in log, service.log_tail()

        # What the drain left behind is whole: the stored offsets cover exactly the applied signals
        # (every record is a distinct, valid signal and the test's topics start at offset 0).
        at_stop = await applied()
        assert sum((await _stored_offsets(db)).values()) == at_stop
        assert at_stop < BACKLOG, "the drain finished the whole backlog: make it larger"

        service.start()

        async def all_applied() -> bool:
            return await applied() >= BACKLOG

        await eventually(all_applied, timeout=300, what="the whole backlog after the restart")
    finally:
        service.stop()

    assert await applied() == len({s.signal_id for s in signals}) == BACKLOG
    assert await _stored_offsets(db) == ends


async def _stored_offsets(db: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await db.fetch("SELECT topic, partition, next_offset FROM consumer_offsets")
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
