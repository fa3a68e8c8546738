"""The relay and the SLA timer loop come through a database outage, a PostgreSQL restart and a frozen broker by
themselves, in the middle of a backlog with timers falling due meanwhile: afterwards every timer fired exactly
once, every stored event is on Kafka (re-published ones carry the same ids), and no process was restarted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.migrate import migrate
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.bootstrap import Service, SystemClock, intake_rules
from service.config import Settings
from service.domain.signals import Channel, Signal, SignalKind
from tests.infra import Kafka
from tests.integration.conftest import OwnBroker, OwnPostgres
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import PostgresProxy, eventually, make_settings, suite_keyring

CASES = 2500  # more than two relay batches: the interruption comes in the middle of the backlog
OUTAGE_SECONDS = (
    15  # longer than every SLA window below, so every timer falls due while the dependency is away
)
SEVERITIES = ("minor", "moderate", "major", "critical")
CHANNELS = ("phone", "email", "chat", "social", "web", "in_person")


def scenario_settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(
        kafka,
        database_url,
        consume=False,  # the relay and the timers alone; the test applies the signals as the consumer would
        sla_resolution={s: "PT8S" for s in SEVERITIES},
        sla_first_response={c: "PT4S" for c in CHANNELS},
        sla_warning_fraction=0.5,
        database_pool_size=4,
    )


STORED_SLA_TYPE = {"recovery.sla.warning": "case.sla_warning", "recovery.sla.breached": "case.sla_breached"}


async def leading(expected: float) -> bool:
    return REGISTRY.get_sample_value("recovery_relay_leader") == expected


async def open_cases(pool: asyncpg.Pool, settings: Settings, count: int) -> None:
    """Signals applied as the consumer applies them: each opens a case with four SLA timers."""
    now = datetime.now(UTC)
    store, rules = PostgresIntakeStore(pool, suite_keyring()), intake_rules(settings)
    tag = uuid.uuid4().hex[:6]
    for start in range(0, count, 500):
        signals = [
            Signal(
                source="restart-test",
                id=f"{tag}-{i}",
                kind=SignalKind.NPS,
                occurred_at=now,
                received_at=now,
                customer_id=f"cust-{tag}-{i}",
                channel=Channel.CHAT,
                score=1,
            )
            for i in range(start, min(start + 500, count))
        ]
        await apply_signals(signals, {}, "restart-test", store, rules, VaderSentiment(), SystemClock())


async def relay_started_on_backlog(pool: asyncpg.Pool) -> None:
    """Returns as soon as the relay has published part of the backlog (a tight poll, not a sleep)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT coalesce(max(position), 0) FROM relay_positions") > 0:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the relay did not start on the backlog within 60 s")


async def through_an_interruption(
    service: Service,
    settings: Settings,
    kafka: Kafka,
    direct: Callable[[], Awaitable[asyncpg.Pool]],
    interrupt: Callable[[], Awaitable[None]],
    resume: Callable[[], Awaitable[None]],
    noticed: Callable[[], Awaitable[bool]] = lambda: leading(0),
) -> None:
    """Open CASES cases, interrupt a dependency once the relay is in the backlog, hold the outage while every
    timer falls due, resume it, and check that everything fired once and was published, by the same process."""
    pool = await direct()
    await eventually(lambda: leading(1), what="the relay leading")
    await open_cases(pool, settings, CASES)
    await relay_started_on_backlog(pool)
    await pool.close()
    await interrupt()
    deadline = time.monotonic() + OUTAGE_SECONDS
    await eventually(noticed, what="the interruption noticed")
    # Holding the dependency away is the scenario itself (timers fall due meanwhile), not a synchronisation.
    await asyncio.sleep(max(deadline - time.monotonic(), 0))
    assert service.alive(), "a background loop died during the outage"
    await resume()
    pool = await direct()
    try:
        await everything_fired_once_and_published(pool, settings, kafka)
    finally:
        await pool.close()
    assert service.alive()
    assert await leading(1)


async def everything_fired_once_and_published(pool: asyncpg.Pool, settings: Settings, kafka: Kafka) -> None:
    async def settled() -> bool:
        unfired = await pool.fetchval("SELECT count(*) FROM sla_timers WHERE fired_at IS NULL")
        head = await pool.fetchval("SELECT max(position) FROM events")
        position = await pool.fetchval("SELECT position FROM relay_positions")
        return unfired == 0 and position == head

    await eventually(settled, timeout=180, what="every timer fired and the relay at the head of the log")
    sla_rows = await pool.fetch(
        "SELECT stream_id, data->>'sla' AS sla, type FROM events WHERE type IN ('case.sla_warning', 'case.sla_breached')"
    )
    fired = {(r["stream_id"], r["sla"], r["type"]) for r in sla_rows}
    assert len(sla_rows) == len(fired) == 4 * CASES  # each case's two warnings and two breaches, once each
    stored = {
        r["event_id"]
        for r in await pool.fetch(
            "SELECT event_id::text FROM events WHERE type NOT IN ('case.sla_warning', 'case.sla_breached')"
        )
    }
    async with Topic(kafka, settings.topic_case_events) as events, Topic(kafka, settings.topic_sla) as sla:

        async def all_on_kafka() -> bool:
            published = {ce(r)["ce_id"] for r in await events.poll()}
            on_sla = {(r.key.decode(), json.loads(r.value)["sla"]) for r in await sla.poll()}
            return published >= stored and len(on_sla) == 2 * CASES and len(sla.records) >= 4 * CASES

        await eventually(all_on_kafka, timeout=120, what="every stored event on Kafka")
        await events.poll()
        await sla.poll()
    assert {ce(r)["ce_id"] for r in events.records} == stored  # nothing lost, nothing invented
    published_sla = {
        (r.key.decode(), json.loads(r.value)["sla"], STORED_SLA_TYPE[ce(r)["ce_type"]]) for r in sla.records
    }
    assert published_sla == fired


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[PostgresProxy]:
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    await conn.close()
    yield await PostgresProxy(database_url).start()


async def test_the_relay_and_the_timers_wait_out_a_database_outage_and_resume_by_themselves(
    kafka: Kafka, database_url: str, proxy: PostgresProxy
) -> None:
    async def resume() -> None:
        await proxy.start()

    settings = scenario_settings(kafka, proxy.dsn)
    service = Service(settings)
    await service.start()
    try:
        await through_an_interruption(
            service,
            settings,
            kafka,
            lambda: asyncpg.create_pool(database_url, min_size=1, max_size=2),
            proxy.cut,
            resume,
        )
    finally:
        await service.stop()


async def test_the_relay_and_the_timers_come_through_a_postgresql_restart_by_themselves(
    kafka: Kafka, own_postgres: OwnPostgres
) -> None:
    async def interrupt() -> None:
        await asyncio.to_thread(own_postgres.stop)

    async def resume() -> None:
        await asyncio.to_thread(own_postgres.start)

    settings = scenario_settings(kafka, own_postgres.dsn)
    service = Service(settings)
    await service.start()
    try:
        await through_an_interruption(
            service,
            settings,
            kafka,
            lambda: asyncpg.create_pool(own_postgres.dsn, min_size=1, max_size=2),
            interrupt,
            resume,
        )
    finally:
        await service.stop()


async def test_the_relay_waits_out_a_frozen_broker_while_the_timers_go_on(
    own_broker: OwnBroker, database_url: str
) -> None:
    kafka = own_broker.kafka

    async def interrupt() -> None:
        own_broker.freeze()

    async def resume() -> None:
        own_broker.thaw()

    async def timers_fired_while_frozen() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            unfired = await conn.fetchval("SELECT count(*) FROM sla_timers WHERE fired_at IS NULL")
            behind = await conn.fetchval(
                "SELECT (SELECT max(position) FROM events) > (SELECT position FROM relay_positions)"
            )
        finally:
            await conn.close()
        return unfired == 0 and behind  # the timers need only the database; the relay waits for the broker

    settings = scenario_settings(kafka, database_url)
    service = Service(settings)
    await service.start()
    try:
        await through_an_interruption(
            service,
            settings,
            kafka,
            lambda: asyncpg.create_pool(database_url, min_size=1, max_size=2),
            interrupt,
            resume,
            timers_fired_while_frozen,
        )
    finally:
        own_broker.thaw()
        await service.stop()


class PartitionProxy(PostgresProxy):
    """A hop that can stop carrying bytes without closing anything: a network partition, where a client
    learns nothing until its own timeouts (the readiness probe's) fire."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def partition(self) -> None:
        self.flowing.clear()

    async def heal(self) -> None:
        self.flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        if self.upstream_unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream_unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream_tcp)
        await asyncio.gather(
            self._carry(reader, up_writer), self._carry(up_reader, writer), return_exceptions=True
        )

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                await self.flowing.wait()
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()


PROBE_PERIOD = 0.2  # how often the stand-in orchestrator probes /readyz: a load, not a synchronisation


async def test_the_relay_and_the_timers_come_through_a_network_partition_with_readiness_probes(
    kafka: Kafka, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    await conn.close()
    proxy = await PartitionProxy(database_url).start()
    settings = scenario_settings(kafka, proxy.dsn)
    service = Service(settings)
    await service.start()

    async def probe() -> None:  # as the orchestrator does, all along: each probe gives up after its timeout
        while True:
            await service.ready()
            await asyncio.sleep(PROBE_PERIOD)

    async def partitioned() -> bool:  # the probe says the database is down, or does not answer (no hang here)
        probe = asyncio.ensure_future(service.ready())
        done, _ = await asyncio.wait({probe}, timeout=3)
        return not done or not probe.result()["database"]

    prober = asyncio.create_task(probe())
    try:
        await through_an_interruption(
            service,
            settings,
            kafka,
            lambda: asyncpg.create_pool(database_url, min_size=1, max_size=2),
            proxy.partition,
            proxy.heal,
            partitioned,
        )
    finally:
        prober.cancel()
        await proxy.heal()
        await service.stop()


async def test_the_loops_come_through_their_sessions_killed_again_and_again(
    kafka: Kafka, database_url: str
) -> None:
    """A session the server ends in the middle of a transaction can leave asyncpg's connection in a state that
    raises InternalClientError ("cannot switch to state ..."), not only InterfaceError: the loops must treat
    both as the database going away, and the relay must not try to unlock on the broken connection."""
    spared = {"application_name": "the test"}  # the service's sessions have none
    conn = await asyncpg.connect(database_url, server_settings=spared)
    await migrate(conn)
    settings = scenario_settings(kafka, database_url)
    service = Service(settings)
    await service.start()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, server_settings=spared)
    try:
        await eventually(lambda: leading(1), what="the relay leading")
        await open_cases(pool, settings, CASES)
        await relay_started_on_backlog(pool)
        until = time.monotonic() + OUTAGE_SECONDS
        killed = 0
        while time.monotonic() < until:  # every session of the service, every 100 ms, while timers fall due
            killed += await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND application_name = ''"
            )
            await asyncio.sleep(0.1)
        assert killed > 20
        assert service.alive(), service.failures()
        await everything_fired_once_and_published(pool, settings, kafka)
        assert service.alive(), service.failures()
    finally:
        await pool.close()
        await conn.close()
        await service.stop()
