"""Every staff command leaves one log line: case, actor, command and result, refused ones too; never free text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs

from tests.integration.api_only import api_over
from tests.support import AGENT, MANAGER

SECRET = "the customer's neighbour, Jane Doe, saw everything"


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url) as client:
        yield client


async def test_applied_and_refused_commands_each_log_one_line_with_ids_and_no_free_text(
    api: httpx.AsyncClient,
) -> None:
    opening = {"customer_id": "logged-1", "severity": "major", "reason": SECRET}
    with capture_logs() as lines:
        opened = await api.post("/v1/cases", json=opening, headers=MANAGER)
        case_id = opened.json()["case_id"]
        await api.post(f"/v1/cases/{case_id}/notes", json={"note": SECRET}, headers=AGENT)
        refund = {"kind": "refund", "amount": "5", "currency": "EUR", "reason": SECRET}
        await api.post(f"/v1/cases/{case_id}/compensations/nope/approve", headers=MANAGER)
        await api.post(f"/v1/cases/{case_id}/compensations", json=refund, headers=AGENT)
    commands = [line for line in lines if line["event"] == "command"]
    assert [(c["command"], c["actor"], c["case_id"], c["result"]) for c in commands] == [
        ("open", "mia", case_id, "applied"),
        ("add_note", "ana", case_id, "applied"),
        ("approve:nope", "mia", case_id, "InvalidValue"),  # refused in the domain: no such request
        ("request_compensation", "ana", case_id, "applied"),
    ]
    assert commands[0]["customer_id"] == "logged-1" and commands[-1]["version"] == 3
    assert all(c["log_level"] == "info" for c in commands)
    assert not any(SECRET in str(value) for line in lines for value in line.values())
