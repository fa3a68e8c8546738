"""The trends page in a real browser: a chart drawn by the server, readable without colour and without the chart."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from service.config import Settings
from tests.browser.conftest import browser_settings
from tests.browser.test_console import screenshots, sign_in
from tests.infra import Kafka
from tests.support import AUTH, TOKEN, ServiceProcess


@pytest.fixture
async def settings(kafka: Kafka, database_url: str) -> Settings:
    return browser_settings(kafka, database_url, trend_threshold=3)


async def resolved(api: httpx.AsyncClient, customer: str, root_cause: str) -> None:
    body = {"customer_id": customer, "severity": "moderate", "channel": "email", "reason": "wrote in"}
    opened = await api.post("/v1/cases", json=body, headers=AUTH)
    assert opened.status_code == 201, opened.text
    resolve = {"resolution_type": "apology_only", "root_cause": root_cause, "prevention_action": "plan ahead"}
    done = await api.post(f"/v1/cases/{opened.json()['case_id']}/resolve", json=resolve, headers=AUTH)
    assert done.status_code == 200, done.text


async def test_the_trends_chart_shows_the_counts_and_marks_the_trend_in_words_and_colour(
    browser: Browser, service: ServiceProcess, tmp_path: Path
) -> None:
    causes = ["scheduling"] * 4 + ["parts_quality"] * 2 + ["communication_gap"]
    async with httpx.AsyncClient(base_url=service.url) as api:
        for n, cause in enumerate(causes):
            await resolved(api, f"trends-{n}", cause)

    page = await (await browser.new_context()).new_page()
    await sign_in(page, service.url, TOKEN)
    await page.get_by_role("link", name="Trends").click()
    chart = page.get_by_role("img", name=re.compile("Resolved cases per root cause, last 90 days"))
    await expect(chart).to_be_visible()
    await expect(page.locator("svg .bar")).to_have_count(3)
    await expect(page.locator("svg .bar.trend")).to_have_count(1)
    await expect(page.locator("svg .bar.trend")).to_contain_text("scheduling")
    await expect(page.locator("svg .bar.trend .count")).to_have_text("4 · trend")
    trend_fill = await page.locator("svg .bar.trend rect").evaluate("el => getComputedStyle(el).fill")
    other_fill = await page.locator("svg .bar:not(.trend) rect").first.evaluate(
        "el => getComputedStyle(el).fill"
    )
    assert trend_fill != other_fill
    await expect(page.locator("svg")).to_contain_text("threshold 3")
    table = page.get_by_role("table", name=re.compile("Resolved cases per root cause"))
    await expect(table.locator("tbody tr")).to_have_text(
        [
            re.compile("scheduling\\s*4\\s*trend"),
            re.compile("parts_quality\\s*2\\s*no"),
            re.compile("communication_gap\\s*1\\s*no"),
        ]
    )
    await page.screenshot(path=screenshots(tmp_path) / "console-trends.png", full_page=True)

    await page.get_by_label("Window in days").fill("7")
    await page.get_by_label("Window in days").press("Enter")
    await expect(page.get_by_role("img", name=re.compile("last 7 days"))).to_be_visible()
    await expect(page).to_have_url(re.compile("window_days=7"))
