"""The console's queue on PostgreSQL: open cases by the next deadline of any running clock, then case id, paged
by a cursor that carries both; a case with no running clock (paused) last; "breaching within an hour" on it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from service.adapters.postgres.case_reads import PostgresCaseReads, queue_query
from service.app.reads import CaseFilter, InvalidCursor
from service.domain.case import next_deadline
from service.domain.registry import SNAPSHOT
from tests.integration.test_console import app, browser, sign_in
from tests.support import AUTH, TOKEN, suite_keyring

__all__ = ["app", "browser"]  # the fixtures, shared with test_console

OPEN = CaseFilter()


async def opened(client: httpx.AsyncClient, customer: str, severity: str, channel: str) -> dict[str, Any]:
    body = {"customer_id": customer, "severity": severity, "channel": channel, "reason": "queue order"}
    answer = await client.post("/v1/cases", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def pause(client: httpx.AsyncClient, case_id: str) -> None:
    answer = await client.post(f"/v1/cases/{case_id}/pause", json={"reason": "awaiting_parts"}, headers=AUTH)
    assert answer.status_code == 200, answer.text


async def every_page(reads: PostgresCaseReads, where: CaseFilter, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page, cursor = await reads.queue(where, limit, cursor)
        pages.append([c.state.customer_id for c in page])
        if cursor is None:
            return pages


async def test_a_first_response_due_before_another_cases_resolution_comes_first_and_paused_cases_last(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    # minor by phone: first response in 1 h, resolution in 72 h; critical by email: both in 4 h
    await opened(browser, "q-phone-minor", "minor", "phone")
    await opened(browser, "q-email-critical", "critical", "email")
    acknowledged = await opened(browser, "q-acknowledged-major", "major", "phone")  # resolution in 24 h
    answer = await browser.post(f"/v1/cases/{acknowledged['case_id']}/acknowledge", headers=AUTH)
    assert answer.status_code == 200, answer.text
    paused = []
    for customer in ("q-paused-1", "q-paused-2"):
        case = await opened(browser, customer, "critical", "social")
        await pause(browser, case["case_id"])
        paused.append((case["case_id"], customer))
    resolved = await opened(browser, "q-resolved", "critical", "social")
    body = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "a check"}
    answer = await browser.post(f"/v1/cases/{resolved['case_id']}/resolve", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text

    expected = ["q-phone-minor", "q-email-critical", "q-acknowledged-major"] + [c for _, c in sorted(paused)]
    reads = PostgresCaseReads(pool, suite_keyring())
    pages = await every_page(reads, OPEN, 2)
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]  # the second cursor is after a paused case
    assert await every_page(reads, OPEN, 5) == [expected]
    api = await browser.get("/v1/cases", params={"status": "open"}, headers=AUTH)
    by_resolution = [c["customer_id"] for c in api.json()["items"]]  # the API's documented order, unchanged
    assert by_resolution.index("q-email-critical") < by_resolution.index("q-phone-minor")

    rows = await pool.fetch("SELECT state, state_version, next_deadline FROM cases")
    for row in rows:
        assert row["next_deadline"] == next_deadline(SNAPSHOT.read(row["state_version"], row["state"]))
    assert sum(r["next_deadline"] is None for r in rows) == 3  # two paused, one resolved

    await sign_in(browser, TOKEN)
    page = (await browser.get("/console/queue")).text
    shown = re.findall(r"(q-[a-z0-9-]+)</td>", page)
    assert shown == expected
    times = re.findall(r'<tr class="state-[a-z-]+" data-deadline="([^"]+)"', page)
    assert len(times) == 3 and times == sorted(times, key=datetime.fromisoformat)  # monotonic down the page


async def test_breaching_within_an_hour_is_a_next_deadline_within_the_hour_of_any_running_clock(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await opened(browser, "b-phone", "minor", "phone")  # first response in 1 h
    await opened(browser, "b-email", "critical", "email")  # 4 h
    await pause(browser, (await opened(browser, "b-social-paused", "critical", "social"))["case_id"])
    reads = PostgresCaseReads(pool, suite_keyring())
    soon = CaseFilter(next_deadline_before=datetime.now(UTC) + timedelta(hours=1))
    assert await every_page(reads, soon, 10) == [["b-phone"]]
    later = CaseFilter(next_deadline_before=datetime.now(UTC) + timedelta(hours=5))
    assert await every_page(reads, later, 1) == [["b-phone"], ["b-email"]]


async def test_a_forged_queue_cursor_is_refused_and_a_queue_cursor_is_no_approvals_cursor(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    reads = PostgresCaseReads(pool, suite_keyring())
    for customer in ("f-1", "f-2"):
        await pause(browser, (await opened(browser, customer, "critical", "social"))["case_id"])
    _, after_paused = await reads.queue(OPEN, 1, None)
    assert after_paused is not None
    assert len((await reads.queue(OPEN, 1, after_paused))[0]) == 1
    for forged in ("%%%%", "bm9uZXxh", "MjAyNi0wMS0wMXxh"):  # not base64; "none|a"; a naive "2026-01-01|a"
        with pytest.raises(InvalidCursor):
            await reads.queue(OPEN, 1, forged)
    with pytest.raises(InvalidCursor):
        await reads.awaiting_approval(1, after_paused)


async def test_the_index_cases_queue_serves_every_page_without_a_sort(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for n in range(3):
        await opened(browser, f"i-{n}", "major", "phone")
    _, cursor = await PostgresCaseReads(pool, suite_keyring()).queue(OPEN, 1, None)
    for where, after in (
        (OPEN, None),
        (CaseFilter(severity="major"), cursor),
        (CaseFilter(owner="ana"), None),
    ):
        sql, args = queue_query(where, 26, after)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")  # a few rows: otherwise a scan is as cheap
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        assert '"Index Name": "cases_queue"' in plan and '"Node Type": "Sort"' not in plan, plan
