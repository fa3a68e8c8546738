"""Two processes on one PostgreSQL: `recovery serve` listening on 0.0.0.0 as a pod does, and a second replica.
A session made on either works on the other, and signed out on either is refused on both. Off loopback every
cookie the service sets is Secure and every response carries HSTS."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.adapters.http.transport_security import HSTS
from service.bootstrap import SYSTEM_CLOCK
from service.config import Settings
from tests.infra import Kafka
from tests.integration.test_console_sessions import (
    COOKIE,
    KEY,
    queue_with,
    refused,
    replica,
    sign_in,
    sign_out,
    works,
)
from tests.support import TOKEN, ServiceProcess, eventually, make_settings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def pod(kafka: Kafka, database_url: str, pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[str]:
    """The base URL of `recovery serve` on 0.0.0.0 with the shared key and the default (Secure) cookie."""
    settings: Settings = make_settings(kafka, database_url, http_host="0.0.0.0", console_session_key=KEY)
    process = ServiceProcess(settings, tmp_path, "pod").start()
    try:
        await eventually(process.url_ready, what=f"the service ready; log:\n{process.log_tail()}")
        yield process.url
    finally:
        process.stop()


def secure_cookies_of(response: httpx.Response) -> dict[str, str]:
    """The cookies a response sets, each asserted Secure (a browser would send none of them over plain HTTP;
    this client does, by hand, as a TLS proxy in front of the pod would)."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            assert morsel["secure"] is True, header
            found[name] = morsel.value
    assert response.headers["strict-transport-security"] == HSTS
    return found


async def sign_in_over_the_wire(http: httpx.AsyncClient) -> str:
    form = await http.get("/console/sign-in")
    found = CSRF.search(form.text)
    assert found, form.text
    signed = await http.post(
        "/console/sign-in",
        data={"csrf": found.group(1), "token": TOKEN},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in secure_cookies_of(form).items())},
    )
    assert signed.status_code == 303, signed.text
    return secure_cookies_of(signed)[COOKIE]


async def queue_over_the_wire(http: httpx.AsyncClient, cookie: str) -> httpx.Response:
    return await http.get("/console/queue", headers={"Cookie": f"{COOKIE}={cookie}"})


async def test_a_session_works_across_processes_until_signed_out_on_either_and_every_cookie_is_secure(
    pod: str, pool: asyncpg.Pool, database_url: str
) -> None:
    other = replica(pool, database_url, clock=SYSTEM_CLOCK)  # the pod's clock is the real one too
    async with httpx.AsyncClient(base_url=pod, follow_redirects=False, timeout=30) as http:
        made_by_the_pod = await sign_in_over_the_wire(http)
        assert works(await queue_with(other, made_by_the_pod))
        await sign_out(other, made_by_the_pod)
        assert refused(await queue_over_the_wire(http, made_by_the_pod))  # replayed on the pod: ended there

        made_by_the_other = await sign_in(other)
        page = await queue_over_the_wire(http, made_by_the_other)
        assert works(page) and page.headers["strict-transport-security"] == HSTS
        csrf = CSRF.search(page.text)
        assert csrf, page.text
        out = await http.post(
            "/console/sign-out",
            data={"csrf": csrf.group(1)},
            headers={"Cookie": f"{COOKIE}={made_by_the_other}"},
        )
        assert out.status_code == 303
        assert refused(await queue_with(other, made_by_the_other))
        assert refused(await queue_over_the_wire(http, made_by_the_other))
        assert "strict-transport-security" in (await http.get("/healthz")).headers
