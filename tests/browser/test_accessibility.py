"""axe-core, run in the page, finds no serious or critical violation on any console page.

axe-core comes from a package (axe-playwright-python ships axe.min.js), injected from the installed file:
never from the internet, never copied into this repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import axe_playwright_python
import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from service.config import Settings
from tests.browser.conftest import browser_settings
from tests.browser.test_console import screenshots, sign_in
from tests.infra import Kafka
from tests.support import AGENT, AUTH, TOKEN, ServiceProcess

AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
SERIOUS = {"serious", "critical"}


@pytest.fixture
async def settings(kafka: Kafka, database_url: str) -> Settings:
    return browser_settings(kafka, database_url, trend_threshold=2)


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core finds on the page as it is now, serious or critical only, with where."""
    await page.add_script_tag(path=AXE)
    results = await page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [
        {"rule": v["id"], "impact": v["impact"], "where": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
        if v["impact"] in SERIOUS
    ]


async def a_worked_case(api: httpx.AsyncClient) -> str:
    body = {"customer_id": "axe-customer", "severity": "major", "channel": "phone", "reason": "called twice"}
    opened = await api.post("/v1/cases", json=body, headers=AUTH)
    assert opened.status_code == 201, opened.text
    case_id: str = opened.json()["case_id"]
    for path, command in (("assign", {"owner": "ana"}), ("steps", {"kind": "call_customer"})):
        done = await api.post(f"/v1/cases/{case_id}/{path}", json=command, headers=AUTH)
        assert done.status_code == 200, done.text
    refund = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "the second visit"}
    waiting = await api.post(f"/v1/cases/{case_id}/compensations", json=refund, headers=AGENT)
    assert waiting.json()["compensations"][0]["status"] == "awaiting_approval", waiting.text
    for n in range(2):
        other = {**body, "customer_id": f"axe-resolved-{n}"}
        resolved_id = (await api.post("/v1/cases", json=other, headers=AUTH)).json()["case_id"]
        resolve = {
            "resolution_type": "apology_only",
            "root_cause": "scheduling",
            "prevention_action": "buffers",
        }
        done = await api.post(f"/v1/cases/{resolved_id}/resolve", json=resolve, headers=AUTH)
        assert done.status_code == 200, done.text
    return case_id


async def test_no_console_page_has_a_serious_accessibility_violation(
    browser: Browser, service: ServiceProcess, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=service.url) as api:
        case_id = await a_worked_case(api)
    # The console's CSP allows only its own scripts; the test lets its injected axe-core run beside them.
    page = await (await browser.new_context(bypass_csp=True)).new_page()
    found: dict[str, list[dict[str, Any]]] = {}

    await page.goto(f"{service.url}/console/sign-in")
    found["sign-in"] = await serious_violations(page)
    await page.get_by_label("API token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    found["sign-in refused"] = await serious_violations(page)

    await sign_in(page, service.url, TOKEN)
    found["queue"] = await serious_violations(page)
    await page.goto(f"{service.url}/console/cases/{case_id}")
    await expect(page.get_by_role("heading", name="Case of axe-customer")).to_be_visible()
    found["case"] = await serious_violations(page)
    await page.screenshot(path=screenshots(tmp_path) / "console-case.png", full_page=True)
    await page.goto(f"{service.url}/console/approvals")
    await expect(page.get_by_text("axe-customer").first).to_be_visible()
    found["approvals"] = await serious_violations(page)
    await page.goto(f"{service.url}/console/trends")
    await expect(page.locator("svg .bar.trend")).to_have_count(1)
    found["trends"] = await serious_violations(page)
    await page.goto(f"{service.url}/console/trends?window_days=0")
    await expect(page.get_by_role("alert")).to_be_visible()
    found["trends refused"] = await serious_violations(page)

    assert {name: v for name, v in found.items() if v} == {}
    assert set(found) == {
        "sign-in",
        "sign-in refused",
        "queue",
        "case",
        "approvals",
        "trends",
        "trends refused",
    }
