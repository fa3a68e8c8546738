"""The queue in a real browser: deadline order, a row turning breached as its clock passes, refresh in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, expect

from service.config import Settings
from service.domain.signals import SignalKind
from tests.browser.conftest import browser_settings
from tests.browser.test_console import case_of, screenshots, sign_in
from tests.infra import Kafka
from tests.support import TOKEN, ServiceProcess, publish, signal_event

FIRST_RESPONSE_ON_SOCIAL = timedelta(seconds=30)  # short enough to pass while the test watches


@pytest.fixture
async def settings(kafka: Kafka, database_url: str) -> Settings:
    return browser_settings(kafka, database_url, sla_first_response={"social": FIRST_RESPONSE_ON_SOCIAL})


async def test_the_queue_runs_in_deadline_order_and_a_row_turns_breached_as_its_clock_passes_in_place(
    browser: Browser,
    service: ServiceProcess,
    producer: AIOKafkaProducer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    earlier = signal_event(
        SignalKind.NPS, "queue-email", {"score": 2, "channel": "email"}, at=now - timedelta(hours=1)
    )
    await publish(producer, settings.topic_nps, "queue-email", earlier)
    await publish(
        producer,
        settings.topic_nps,
        "queue-social",
        signal_event(SignalKind.NPS, "queue-social", {"score": 2, "channel": "social"}),
    )
    await case_of(service, "queue-email")
    social = await case_of(service, "queue-social")
    deadline = datetime.fromisoformat(social["first_response_deadline"])

    page = await (await browser.new_context()).new_page()
    await sign_in(page, service.url, TOKEN)
    customers = page.locator("table.queue tbody tr td:nth-child(4)")
    # the next deadline of any running clock, soonest first: queue-social's first response (30 s) comes before
    # queue-email's clocks, though queue-email opened an hour earlier and its resolution is due first
    await expect(customers).to_have_text(["queue-social", "queue-email"])
    row = page.get_by_role("row", name="queue-social")
    assert datetime.now(UTC) < deadline - timedelta(seconds=2), (
        "the case took too long to open to watch its clock"
    )
    await expect(row.locator(".badge")).not_to_have_text("breached")
    await page.evaluate("() => { window.notReloaded = true }")

    await expect(row.locator(".badge")).to_have_text("breached", timeout=60_000)
    await expect(row).to_have_class("state-breached")
    await expect(row.locator(".countdown")).to_contain_text("overdue by")
    assert await page.evaluate("() => window.notReloaded === true")  # the same page, never reloaded

    await publish(
        producer, settings.topic_nps, "queue-new", signal_event(SignalKind.NPS, "queue-new", {"score": 2})
    )
    await case_of(service, "queue-new")
    await page.evaluate("() => window.dispatchEvent(new Event('focus'))")  # as coming back to the tab does
    await expect(customers).to_contain_text(["queue-social", "queue-email", "queue-new"])
    assert await page.evaluate("() => window.notReloaded === true")
    await page.screenshot(path=screenshots(tmp_path) / "console-queue.png", full_page=True)

    await page.get_by_label("Breaching within an hour").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(customers).to_have_text(["queue-social"])  # the others' clocks run for hours yet
