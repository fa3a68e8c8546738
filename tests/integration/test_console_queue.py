"""The console's queue over HTTP: the "breaching within an hour" filter and the rows the refresh script fetches."""

from __future__ import annotations

import httpx

from tests.integration.test_console import app, browser, csrf_of, open_case, sign_in
from tests.support import AUTH, TOKEN

__all__ = ["app", "browser"]  # the fixtures, shared with test_console


async def test_breaching_within_an_hour_keeps_cases_whose_running_clock_ends_within_the_hour(
    browser: httpx.AsyncClient,
) -> None:
    phone = await open_case(browser, "soon-phone")  # first response within an hour
    email = {"customer_id": "later-email", "severity": "major", "channel": "email", "reason": "wrote in"}
    assert (await browser.post("/v1/cases", json=email, headers=AUTH)).status_code == 201  # four hours
    await sign_in(browser, TOKEN)

    soon = (await browser.get("/console/queue", params={"breaching": "true"})).text
    assert "soon-phone" in soon and "later-email" not in soon
    assert 'name="breaching" value="true" checked' in soon

    acknowledged = await browser.post(f"/v1/cases/{phone['case_id']}/acknowledge", headers=AUTH)
    assert acknowledged.status_code == 200, acknowledged.text
    after = (await browser.get("/console/queue", params={"breaching": "true"})).text
    assert "soon-phone" not in after  # its first-response clock stopped; resolution is a day away


async def test_the_refresh_fetches_the_queue_rows_alone_with_the_same_filters(
    browser: httpx.AsyncClient,
) -> None:
    await open_case(browser, "rows-a")
    await open_case(browser, "rows-b")
    await sign_in(browser, TOKEN)
    page = (await browser.get("/console/queue", params={"customer": "rows-b"})).text
    assert 'data-refresh="/console/queue/rows?severity=&amp;customer=rows-b"' in page

    rows = await browser.get("/console/queue/rows", params={"customer": "rows-b"})
    assert rows.status_code == 200 and rows.headers["cache-control"] == "no-store"
    assert rows.text.lstrip().startswith('<div id="queue-results"')
    assert "rows-b" in rows.text and "rows-a" not in rows.text and "<html" not in rows.text
    assert await csrf_of(browser, "/console/queue")  # the page around them still has its forms


async def test_the_queue_rows_need_a_session(browser: httpx.AsyncClient) -> None:
    refused = await browser.get("/console/queue/rows")
    assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"
