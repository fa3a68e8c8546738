"""Console sessions across replicas: RECOVERY_CONSOLE_SESSION_KEY signs them, so every replica accepts them."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.support import TOKEN

KEY = "k" * 32


def replica(pool: asyncpg.Pool, database_url: str, key: str | None) -> Any:
    """One more service process's HTTP app over the same database, as a second replica or a restart makes."""
    settings = Settings(
        database_url=database_url,
        api_tokens={TOKEN: ApiToken(actor="tester", role="owner")},
        console_session_key=key,
    )
    service = Service(settings)
    service.pool = pool
    return http_app(service, settings)


async def signed_in_cookie(app: Any) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://one.test"
    ) as client:
        page = await client.get("/console/sign-in")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        signed = await client.post("/console/sign-in", data={"csrf": found.group(1), "token": TOKEN})
        assert signed.status_code == 303
        cookie = client.cookies.get("recovery_console")
    assert cookie is not None
    return cookie


async def queue_with(app: Any, cookie: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://two.test") as client:
        client.cookies.set("recovery_console", cookie, domain="two.test", path="/console")
        return await client.get("/console/queue")


async def test_replicas_with_the_same_session_key_accept_each_others_sessions(
    pool: asyncpg.Pool, database_url: str
) -> None:
    cookie = await signed_in_cookie(replica(pool, database_url, KEY))
    other = await queue_with(replica(pool, database_url, KEY), cookie)
    assert other.status_code == 200 and "Signed in as <strong>tester</strong>" in other.text


async def test_a_session_signed_with_another_key_is_refused(pool: asyncpg.Pool, database_url: str) -> None:
    cookie = await signed_in_cookie(replica(pool, database_url, KEY))
    for key in ("x" * 32, None):  # another configured key, or a random one per process
        refused = await queue_with(replica(pool, database_url, key), cookie)
        assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"


def test_a_session_key_shorter_than_32_characters_stops_start_up_naming_it() -> None:
    with pytest.raises(ValidationError, match="console_session_key"):
        Settings(console_session_key="too-short")
