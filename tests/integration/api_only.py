"""The HTTP API over a migrated database and nothing else: no broker, no consumers, as an API-only process serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.support import DATA_KEYS, TOKEN


@asynccontextmanager
async def api_over(
    pool: asyncpg.Pool, database_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real app, whose stores use `pool` (the commands and reads need PostgreSQL only)."""
    settings = Settings(
        database_url=database_url,
        data_keys=DATA_KEYS,
        api_tokens={
            TOKEN: ApiToken(actor="tester", role="owner"),
            "test-agent-token-for-the-suite-only": ApiToken(actor="ana", role="agent"),
            "test-manager-token-for-the-suite-only": ApiToken(actor="mia", role="manager"),
        },
        **overrides,
    )
    service = Service(settings)
    service.pool = pool
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client
