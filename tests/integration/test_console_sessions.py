"""Console sessions end: stored in PostgreSQL and shared by replicas, ended by sign-out, by the idle timeout, by
the absolute lifetime and by an owner; a replayed cookie is refused in each case. The cookie is Secure by
default, HSTS goes with it, and failed sign-ins are throttled."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from service.observability import AUTH_FAILURES
from tests.support import AGENT_TOKEN, TOKEN

KEY = "console-key-shared-by-the-replicas-0123"
COOKIE = "recovery_console"


@dataclass
class MovableClock:
    at: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, span: timedelta) -> None:
        self.at += span


@pytest.fixture
async def second_pool(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """Another replica's own connections to the same database."""
    other = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield other
    finally:
        await other.close()


def replica(pool: asyncpg.Pool, database_url: str, key: str | None = KEY, **overrides: Any) -> Any:
    """One more service process's HTTP app over the same database, as a second replica or a restart makes."""
    clock = overrides.pop("clock", MovableClock())
    settings = Settings(
        database_url=database_url,
        api_tokens={
            TOKEN: ApiToken(actor="tester", role="owner"),
            AGENT_TOKEN: ApiToken(actor="ana", role="agent"),
        },
        console_session_key=key,
        **overrides,
    )
    service = Service(settings)
    service.pool = pool
    return http_app(service, settings, clock=clock)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://console.test")


async def sign_in(app: Any, token: str = TOKEN) -> str:
    async with client(app) as browser:
        page = await browser.get("/console/sign-in")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        signed = await browser.post("/console/sign-in", data={"csrf": found.group(1), "token": token})
        assert signed.status_code == 303, signed.text
        cookie = browser.cookies.get(COOKIE)
    assert cookie is not None
    return cookie


async def queue_with(app: Any, cookie: str) -> httpx.Response:
    async with client(app) as browser:
        browser.cookies.set(COOKIE, cookie, domain="console.test", path="/console")
        return await browser.get("/console/queue")


async def sign_out(app: Any, cookie: str) -> None:
    async with client(app) as browser:
        browser.cookies.set(COOKIE, cookie, domain="console.test", path="/console")
        page = await browser.get("/console/queue")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        out = await browser.post("/console/sign-out", data={"csrf": csrf.group(1)})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in?signed_out=1"


def works(response: httpx.Response) -> bool:
    return response.status_code == 200 and "Signed in as <strong>" in response.text


def refused(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"] == "/console/sign-in"


async def test_a_session_made_on_one_replica_works_on_another_until_signed_out_on_either(
    pool: asyncpg.Pool, second_pool: asyncpg.Pool, database_url: str
) -> None:
    one, two = replica(pool, database_url), replica(second_pool, database_url)
    cookie = await sign_in(one)
    assert works(await queue_with(two, cookie)) and works(await queue_with(one, cookie))
    await sign_out(two, cookie)
    assert refused(await queue_with(one, cookie))  # the copy replayed on the first replica: ended there too
    assert refused(await queue_with(two, cookie))


async def test_a_session_under_another_key_is_refused(pool: asyncpg.Pool, database_url: str) -> None:
    cookie = await sign_in(replica(pool, database_url))
    for key in ("another-replicas-console-key-98765432", None):  # another configured key, or a random one per process
        assert refused(await queue_with(replica(pool, database_url, key), cookie))


async def test_an_idle_session_ends_and_each_request_slides_the_idle_timeout(
    pool: asyncpg.Pool, database_url: str
) -> None:
    clock = MovableClock()
    app = replica(pool, database_url, clock=clock, console_idle_timeout="PT30M")
    cookie = await sign_in(app)
    for _ in range(3):  # used every 29 minutes: it lives on, well past 30 minutes after sign-in
        clock.advance(timedelta(minutes=29))
        assert works(await queue_with(app, cookie))
    clock.advance(timedelta(minutes=30, seconds=1))
    assert refused(await queue_with(app, cookie))


async def test_a_session_ends_at_its_absolute_lifetime_however_used(
    pool: asyncpg.Pool, database_url: str
) -> None:
    clock = MovableClock()
    app = replica(pool, database_url, clock=clock, console_session_lifetime="PT2H")
    cookie = await sign_in(app)
    for _ in range(5):
        clock.advance(timedelta(minutes=23))
        assert works(await queue_with(app, cookie))
    clock.advance(timedelta(minutes=6))  # 2 h 1 min after sign-in, used 6 minutes ago
    assert refused(await queue_with(app, cookie))


async def test_the_stored_row_can_present_no_session_and_names_no_token(
    pool: asyncpg.Pool, database_url: str
) -> None:
    cookie = await sign_in(replica(pool, database_url))
    rows = await pool.fetch("SELECT * FROM console_sessions")
    assert len(rows) == 1 and rows[0]["actor"] == "tester"
    stored = b"".join(bytes(v) for v in (rows[0]["id_digest"], rows[0]["token_digest"]))
    for secret in (cookie.encode(), TOKEN.encode()):
        assert secret not in stored and hashlib.sha256(secret).digest() not in stored


async def test_an_owner_ends_every_session_of_an_actor_by_api_and_an_agent_may_not(
    pool: asyncpg.Pool, second_pool: asyncpg.Pool, database_url: str
) -> None:
    one, two = replica(pool, database_url), replica(second_pool, database_url)
    first, second, owners = (
        await sign_in(one, AGENT_TOKEN),
        await sign_in(two, AGENT_TOKEN),
        await sign_in(one),
    )
    async with client(two) as api:
        agent = await api.post(
            "/v1/sessions/revoke",
            json={"actor": "tester"},
            headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
        )
        assert agent.status_code == 403
        ended = await api.post(
            "/v1/sessions/revoke", json={"actor": "ana"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert ended.status_code == 200 and ended.json() == {"actor": "ana", "revoked": 2}
        blank = await api.post(
            "/v1/sessions/revoke", json={"actor": ""}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert blank.status_code == 422 and blank.json()["field"] == "actor"
    assert refused(await queue_with(one, first)) and refused(await queue_with(two, second))
    assert works(await queue_with(two, owners))  # another actor's session is untouched


async def test_recovery_sessions_revoke_ends_an_actors_sessions(
    pool: asyncpg.Pool, database_url: str
) -> None:
    app = replica(pool, database_url)
    cookie = await sign_in(app, AGENT_TOKEN)
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.entrypoints.cli", "sessions", "revoke", "--actor", "ana"],
        env={**os.environ, "RECOVERY_DATABASE_URL": database_url, "RECOVERY_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "ended 1 console session(s) of ana" in run.stdout, run.stderr
    assert refused(await queue_with(app, cookie))


async def test_the_cookie_is_secure_and_hsts_is_sent_by_default_and_neither_when_turned_off(
    pool: asyncpg.Pool, database_url: str
) -> None:
    async with client(replica(pool, database_url)) as browser:
        page = await browser.get("/console/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" in (await browser.get("/healthz")).headers
    plain = replica(pool, database_url, console_cookie_secure=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=plain), base_url="http://127.0.0.1"
    ) as local:
        page = await local.get("/console/sign-in")
        assert "secure" not in page.headers["set-cookie"].lower()
        assert "strict-transport-security" not in page.headers


async def test_failed_sign_ins_are_throttled_with_429_and_counted(
    pool: asyncpg.Pool, database_url: str
) -> None:
    app = replica(pool, database_url, auth_failures_per_minute=2)
    throttled = AUTH_FAILURES.labels("console", "throttled")
    wrong = AUTH_FAILURES.labels("console", "unknown_token")
    before = (throttled._value.get(), wrong._value.get())
    async with client(app) as browser:
        page = await browser.get("/console/sign-in")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found
        answers = [
            await browser.post("/console/sign-in", data={"csrf": found.group(1), "token": t})
            for t in ("guess-one", "guess-two", TOKEN)
        ]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert int(answers[2].headers["retry-after"]) == 30 and "try again in 30 seconds" in answers[2].text
        api = await browser.get("/v1/cases", headers={"Authorization": f"Bearer {TOKEN}"})
        assert api.status_code == 429 and api.json()["error"] == "too_many_failures"  # one budget per address
    assert (throttled._value.get(), wrong._value.get()) == (before[0] + 1, before[1] + 2)


async def test_sign_in_purges_ended_sessions(pool: asyncpg.Pool, database_url: str) -> None:
    clock = MovableClock()
    app = replica(pool, database_url, clock=clock)
    await sign_in(app)
    clock.advance(timedelta(hours=1))
    await sign_in(app)
    assert await pool.fetchval("SELECT count(*) FROM console_sessions") == 1


def test_a_session_key_shorter_than_32_characters_stops_start_up_naming_it() -> None:
    with pytest.raises(ValidationError, match="console_session_key"):
        Settings(console_session_key="too-short")
