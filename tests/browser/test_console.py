"""The console in a real browser against `recovery serve` as a process, on the real broker and database."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, expect

from service.config import Settings
from service.domain.signals import SignalKind
from tests.support import (
    AUTH,
    MANAGER,
    TOKEN,
    ServiceProcess,
    eventually,
    publish,
    signal_event,
)

AGENT_TOKEN = "test-agent-token-for-the-suite-only"


async def case_of(service: ServiceProcess, customer: str) -> dict[str, Any]:
    async def opened() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=service.url) as api:
            page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AUTH)).json()
        return page["items"][0] if page["items"] else None

    return await eventually(opened, what=f"the case of {customer}")


async def sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/console")
    await page.get_by_label("API token").fill(token)
    await page.get_by_label("API token").press("Enter")  # keyboard only
    await expect(page.get_by_role("heading", name="Open cases")).to_be_visible()


async def assert_every_field_is_labelled(page: Page) -> None:
    unlabelled = await page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => e.labels.length === 0).map(e => e.name)"
    )
    assert unlabelled == []


def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RECOVERY_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_staff_sign_in_see_the_queue_and_work_a_case_in_a_real_browser(
    browser: Browser,
    service: ServiceProcess,
    producer: AIOKafkaProducer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    later = signal_event(SignalKind.NPS, "browser-later", {"score": 2, "channel": "phone"}, at=now)
    sooner = signal_event(
        SignalKind.NPS, "browser-sooner", {"score": 2, "channel": "phone"}, at=now - timedelta(hours=1)
    )
    await publish(producer, settings.topic_nps, "browser-later", later)
    await publish(producer, settings.topic_nps, "browser-sooner", sooner)
    case = await case_of(service, "browser-sooner")
    await case_of(service, "browser-later")

    page = await (await browser.new_context()).new_page()
    await page.goto(f"{service.url}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not one this service knows")

    await sign_in(page, service.url, TOKEN)
    customers = page.locator("table.queue tbody tr td:nth-child(4)")
    await expect(customers).to_have_text(["browser-sooner", "browser-later"])  # soonest deadline first
    await expect(page.locator("table.queue .badge")).to_have_text(["breached", "on time"])
    countdown = page.locator(".countdown").first
    await countdown.evaluate("el => { el.textContent = '' }")
    await expect(countdown).to_have_text(re.compile(r"left|overdue"))  # our script refills it every second
    await page.screenshot(path=screenshots(tmp_path) / "queue.png", full_page=True)
    await assert_every_field_is_labelled(page)

    await page.get_by_label("Customer").fill("browser-later")
    await page.get_by_role("button", name="Filter").click()
    await expect(customers).to_have_text(["browser-later"])
    await page.get_by_role("link", name="Clear").click()
    await page.get_by_label("Mine").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("No open cases match")).to_be_visible()

    await page.goto(f"{service.url}/console/queue")
    await page.get_by_role("link", name=f"Open case {case['case_id'][:8]}").click()
    await expect(page.get_by_role("heading", name="Case of browser-sooner")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("phone")
    await expect(page.locator(".facts")).to_contain_text("nps:0-3")
    first_response = page.get_by_role("row", name=re.compile("First response"))
    await expect(first_response).to_contain_text("breached")  # phone answers within an hour: an hour ago
    await expect(first_response).to_contain_text("overdue by")

    other = await page.context.new_page()  # a second tab, as a colleague working the same case
    await other.goto(page.url)
    await other.get_by_label("Owner").fill("ana")
    await other.get_by_role("button", name="Assign").click()
    await expect(other.get_by_role("status")).to_contain_text("Owner set")

    await page.get_by_role("button", name="Acknowledge").click()  # decided on the version before ana's
    await expect(page.get_by_role("alert")).to_contain_text("changed since you loaded it")
    await expect(page.get_by_role("alert")).to_contain_text("Reload the page")
    await page.get_by_role("link", name="Reload the case").click()
    await expect(page.locator(".facts")).to_contain_text("ana")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_role("status")).to_contain_text("First response recorded")
    timeline = page.locator(".timeline")
    await expect(timeline).to_contain_text("Assigned to ana by tester")
    await expect(timeline).to_contain_text("Recorded the first response to the customer by tester")
    await expect(page.get_by_role("row", name=re.compile("First response"))).to_contain_text("stopped")
    await page.screenshot(path=screenshots(tmp_path) / "case.png", full_page=True)
    await assert_every_field_is_labelled(page)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out")).to_be_visible()
    await page.goto(f"{service.url}/console/queue")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_an_agent_is_refused_in_the_console_what_the_api_refuses(
    browser: Browser, service: ServiceProcess, producer: AIOKafkaProducer, settings: Settings
) -> None:
    event = signal_event(SignalKind.NPS, "browser-agent", {"score": 1, "channel": "email"})
    await publish(producer, settings.topic_nps, "browser-agent", event)
    case = await case_of(service, "browser-agent")
    page = await (await browser.new_context()).new_page()
    await sign_in(page, service.url, AGENT_TOKEN)
    await page.goto(f"{service.url}/console/cases/{case['case_id']}")
    await expect(page.get_by_role("heading", name="Case of browser-agent")).to_be_visible()

    resolve = {
        "resolution_type": "apology_only",
        "root_cause": "scheduling",
        "prevention_action": "call ahead",
    }
    async with httpx.AsyncClient(base_url=service.url) as api:
        path = f"/v1/cases/{case['case_id']}"
        assert (await api.post(f"{path}/resolve", json=resolve, headers=MANAGER)).status_code == 200
        refused = await api.post(f"{path}/acknowledge", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert refused.status_code == 409

    await page.reload()
    await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(
        0
    )  # not offered on a resolved case
    await page.evaluate(  # posted by hand all the same, with the page's own CSRF token and version
        """() => { const f = document.querySelector('form[action$="/notes"]').cloneNode(true);
           f.action = f.action.replace(/notes$/, 'acknowledge'); document.body.append(f); f.submit(); }"""
    )
    await expect(page.get_by_role("alert")).to_contain_text(refused.json()["detail"])
    async with httpx.AsyncClient(base_url=service.url) as api:
        after = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    assert [e["type"] for e in after["events"]][-1] == "case.resolved"  # the refusal changed nothing
