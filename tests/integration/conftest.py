from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from service.adapters.postgres.migrate import migrate
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.infra import Kafka
from tests.support import make_settings, wait_until_ready


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(kafka, database_url)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated database, for tests of the PostgreSQL adapters without a running service."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    running = Service(settings)
    await running.start()
    try:
        await wait_until_ready(running)
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(service: Service, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


@pytest.fixture
async def producer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.idempotent_producer)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
