from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from tests.infra import Kafka


@pytest.fixture
async def producer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.idempotent_producer, linger_ms=10
    )
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
