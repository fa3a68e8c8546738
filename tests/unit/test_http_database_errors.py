"""The API's answer to a driver error follows the one retry policy: what the loops wait out is a 503."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from service.adapters.http.errors import install_error_handlers
from service.adapters.retry import is_transient
from service.domain.errors import ConcurrencyConflict

RAISED: dict[str, Exception] = {
    "disk-full": asyncpg.exceptions.DiskFullError("could not extend file"),
    "connection-lost": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    "shutting-down": asyncpg.exceptions.AdminShutdownError("terminating connection"),
    "socket": ConnectionResetError("reset by peer"),
    "race": ConcurrencyConflict("UniqueViolationError"),
    "bug": asyncpg.exceptions.UndefinedColumnError("column x does not exist"),
}


def app() -> FastAPI:
    served = FastAPI()
    install_error_handlers(served)

    @served.get("/raise/{name}")
    async def fail(name: str) -> None:
        raise RAISED[name]

    return served


@pytest.mark.parametrize("name", sorted(RAISED))
async def test_a_driver_error_is_a_503_exactly_when_the_retry_policy_waits_it_out(name: str) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get(f"/raise/{name}")
    expected = 503 if is_transient(RAISED[name]) else 500
    assert answer.status_code == expected
    assert answer.json()["error"] == ("unavailable" if expected == 503 else "internal_error")
    assert (name == "bug") == (expected == 500)  # the disk filling up is the database's trouble, not a bug
