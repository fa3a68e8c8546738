"""The console's trends page over HTTP: counts as a server-drawn SVG chart and a table, the window bounded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.integration.test_console import open_case, sign_in
from tests.support import AUTH, TOKEN


@pytest.fixture
async def console(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        api_tokens={TOKEN: ApiToken(actor="tester", role="owner")},
        trend_threshold=2,
    )
    service = Service(settings)
    service.pool = pool
    transport = httpx.ASGITransport(app=http_app(service, settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        yield client


async def resolve_with(client: httpx.AsyncClient, customer: str, root_cause: str) -> None:
    case: dict[str, Any] = await open_case(client, customer)
    body = {"resolution_type": "apology_only", "root_cause": root_cause, "prevention_action": "plan ahead"}
    resolved = await client.post(f"/v1/cases/{case['case_id']}/resolve", json=body, headers=AUTH)
    assert resolved.status_code == 200, resolved.text


async def test_the_trends_page_draws_the_counts_and_marks_the_tags_at_the_threshold(
    console: httpx.AsyncClient,
) -> None:
    await resolve_with(console, "trend-a", "scheduling")
    await resolve_with(console, "trend-b", "scheduling")
    await resolve_with(console, "trend-c", "billing_process")
    await sign_in(console, TOKEN)

    page = await console.get("/console/trends", params={"window_days": "7"})
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    assert '<title id="chart-title">Resolved cases per root cause, last 7 days</title>' in svg
    assert "scheduling: 2 (trend). billing_process: 1. Threshold: 2." in svg  # the <desc>
    assert svg.count('class="bar trend"') == 1 and "2 · trend" in svg  # marked in words, not colour alone
    table = page.text[page.text.index('<table class="trends">') :]
    rows = re.findall(r'<th scope="row">(\w+)</th><td>(\d+)</td><td>(\w+)</td>', table)
    assert rows == [("scheduling", "2", "trend"), ("billing_process", "1", "no")]
    assert 'value="7"' in page.text


async def test_a_window_out_of_bounds_is_refused_with_its_reason_and_the_default_shown(
    console: httpx.AsyncClient,
) -> None:
    await sign_in(console, TOKEN)
    for bad in ("0", "3651", "seven", "-1", "1.5"):
        page = await console.get("/console/trends", params={"window_days": bad})
        assert page.status_code == 400
        assert "a whole number of days from 1 to 3650: showing 90" in page.text
    empty = await console.get("/console/trends")
    assert (
        empty.status_code == 200
        and "No case was resolved with a root cause in the last 90 days" in empty.text
    )


async def test_the_trends_page_needs_a_session(console: httpx.AsyncClient) -> None:
    refused = await console.get("/console/trends")
    assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"
