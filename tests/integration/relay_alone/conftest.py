"""The relay alone, on a log the tests write themselves: no consumers, a connection to the service's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from service.bootstrap import Service
from service.config import Settings
from tests.infra import Kafka
from tests.support import make_settings


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(kafka, database_url, consume=False)  # the relay alone: the test writes the log


@pytest.fixture
async def db(service: Service, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
