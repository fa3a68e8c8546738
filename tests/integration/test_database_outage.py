"""A database that is briefly unreachable makes the consumer wait and retry, never skip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from bench.signal_mix import publish_mix, signal_mix
from service.adapters.postgres.migrate import migrate
from service.bootstrap import Service
from tests.infra import Kafka
from tests.integration.conftest import OwnPostgres
from tests.support import PostgresProxy, eventually, make_settings, wait_until_ready


def retries() -> float:
    return REGISTRY.get_sample_value("recovery_database_retries_total") or 0.0


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[PostgresProxy]:
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    await conn.close()
    yield await PostgresProxy(database_url).start()


async def test_the_consumer_waits_out_a_database_outage_and_then_applies_everything_once(
    kafka: Kafka, database_url: str, proxy: PostgresProxy, producer: AIOKafkaProducer
) -> None:
    settings = make_settings(kafka, proxy.dsn, database_pool_size=3)
    service = Service(settings)
    await service.start()
    direct = await asyncpg.connect(database_url)
    try:
        signals = list(signal_mix(600, customers=50, seed=3))
        ends = await publish_mix(producer, settings.signal_topics(), signals[:300])

        async def applied(n: int) -> bool:
            return await direct.fetchval("SELECT count(*) FROM signal_log") == n

        await eventually(lambda: applied(300), what="the first half applied")
        before = retries()
        await proxy.cut()
        ends = {**ends, **await publish_mix(producer, settings.signal_topics(), signals[300:])}

        async def waiting() -> bool:
            return retries() > before and not (await service.ready())["database"]

        await eventually(waiting, what="the consumer to hit the outage and retry")
        assert await direct.fetchval("SELECT count(*) FROM signal_log") == 300
        await proxy.start()
        await eventually(lambda: applied(600), what="the second half applied after the outage")
        assert (await service.ready())["database"]
        stored = await direct.fetch("SELECT topic, partition, next_offset FROM consumer_offsets")
        assert {(r["topic"], r["partition"]): r["next_offset"] for r in stored} == ends
    finally:
        await direct.close()
        await service.stop()


async def test_the_consumer_comes_through_a_postgresql_restart_and_applies_everything_once(
    kafka: Kafka, own_postgres: OwnPostgres, producer: AIOKafkaProducer
) -> None:
    settings = make_settings(kafka, own_postgres.dsn, database_pool_size=3)
    service = Service(settings)
    await service.start()
    try:
        await wait_until_ready(service)
        signals = list(signal_mix(600, customers=50, seed=5))
        ends = await publish_mix(producer, settings.signal_topics(), signals[:300])

        async def applied(n: int) -> bool:
            try:
                conn = await asyncpg.connect(own_postgres.dsn)
            except (OSError, asyncpg.PostgresError):
                return False
            try:
                return await conn.fetchval("SELECT count(*) FROM signal_log") == n
            finally:
                await conn.close()

        await eventually(lambda: applied(300), what="the first half applied")
        before = retries()
        await asyncio.to_thread(own_postgres.stop)
        ends = {**ends, **await publish_mix(producer, settings.signal_topics(), signals[300:])}

        async def waiting() -> bool:
            return retries() > before

        await eventually(waiting, what="the consumer to meet the restart and retry")
        await asyncio.to_thread(own_postgres.start)
        await eventually(lambda: applied(600), what="the second half applied after the restart")
        conn = await asyncpg.connect(own_postgres.dsn)
        try:
            stored = await conn.fetch("SELECT topic, partition, next_offset FROM consumer_offsets")
        finally:
            await conn.close()
        assert {(r["topic"], r["partition"]): r["next_offset"] for r in stored} == ends
        assert service.alive(), service.failures()
    finally:
        await service.stop()
