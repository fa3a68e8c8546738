"""A case worked from its signal to closed through the console alone, in a real browser, and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, expect

from service.config import Settings
from service.domain.signals import SignalKind
from tests.support import AUTH, ServiceProcess, eventually, publish, signal_event

AGENT_TOKEN = "test-agent-token-for-the-suite-only"  # ana, agent: grants up to 50 on her own
MANAGER_TOKEN = "test-manager-token-for-the-suite-only"  # mia, manager


async def case_from_signal(
    service: ServiceProcess, producer: AIOKafkaProducer, settings: Settings, customer: str
) -> dict[str, Any]:
    event = signal_event(SignalKind.NPS, customer, {"score": 2, "channel": "email"})
    await publish(producer, settings.topic_nps, customer, event)

    async def opened() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=service.url) as api:
            page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AUTH)).json()
        return page["items"][0] if page["items"] else None

    return await eventually(opened, what=f"the case of {customer}")


async def api_case(service: ServiceProcess, case_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=service.url) as api:
        return dict((await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json())


async def signed_in(browser: Browser, url: str, token: str) -> Page:
    """A browser context of its own (its own session cookie), signed in with the keyboard."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}/console")
    await page.get_by_label("API token", exact=True).fill(token)
    await page.get_by_label("API token", exact=True).press("Enter")
    await expect(page.get_by_role("heading", name="Open cases")).to_be_visible()
    return page


async def test_a_case_is_worked_from_signal_to_closed_through_the_console_with_a_second_approver(
    browser: Browser, service: ServiceProcess, producer: AIOKafkaProducer, settings: Settings
) -> None:
    case = await case_from_signal(service, producer, settings, "walk-browser")
    agent = await signed_in(browser, service.url, AGENT_TOKEN)
    await agent.goto(f"{service.url}/console/cases/{case['case_id']}")
    await expect(agent.get_by_role("heading", name="Case of walk-browser")).to_be_visible()
    await expect(agent.get_by_role("button", name="Resolve")).to_have_count(0)  # not for an agent

    await agent.get_by_label("Owner", exact=True).fill("ana")
    await agent.get_by_role("button", name="Assign").click()
    await expect(agent.get_by_role("status")).to_contain_text("Owner set")
    await agent.get_by_role("button", name="Acknowledge").click()
    await expect(agent.get_by_role("status")).to_contain_text("First response recorded")
    await agent.get_by_label("Step", exact=True).select_option("call_customer")
    await agent.get_by_role("button", name="Add step").click()
    await agent.get_by_label("Outcome of step-1", exact=True).select_option("completed")
    await agent.get_by_label("Notes on step-1", exact=True).fill("apologised, offered a refund")
    await agent.get_by_role("button", name="Record outcome of step-1").click()
    await expect(agent.get_by_role("status")).to_contain_text("Step outcome recorded")
    await agent.get_by_label("Kind", exact=True).select_option("refund")
    await agent.get_by_label("Amount", exact=True).fill("120.00")
    await agent.get_by_label("Reason", exact=True).fill("missed appointment")
    await agent.get_by_role("button", name="Request compensation").click()
    timeline = agent.locator(".timeline")
    await expect(timeline).to_contain_text("Requested a refund of 120.00 EUR; it waits for approval")
    await expect(timeline).to_contain_text("above the agent limit")
    await expect(agent.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)

    manager = await signed_in(browser, service.url, MANAGER_TOKEN)  # a second session, its own cookie
    await manager.get_by_role("link", name="Approvals").click()
    await expect(manager.get_by_role("heading", name="Compensations waiting for approval")).to_be_visible()
    await manager.get_by_role("button", name="Approve 120.00 EUR for walk-browser").click()
    await expect(manager.get_by_role("status")).to_contain_text("Compensation approved")
    await expect(manager.get_by_role("button", name="Approve 120.00 EUR for walk-browser")).to_have_count(0)

    await manager.goto(f"{service.url}/console/cases/{case['case_id']}")
    await expect(manager.locator(".timeline")).to_contain_text("Approved the refund of 120.00 EUR")
    await manager.get_by_label("Resolution", exact=True).select_option("full_refund")
    await manager.get_by_label("Prevention action", exact=True).fill("confirm slots the day before")
    await manager.get_by_role("button", name="Resolve").click()  # no root cause chosen: refused
    refusal = manager.locator("#resolve-refusal")
    await expect(refusal).to_contain_text("root_cause is required")
    assert (await api_case(service, case["case_id"]))["status"] == "open"  # the refusal changed nothing
    await manager.get_by_label("Resolution", exact=True).select_option("full_refund")
    await manager.get_by_label("Root cause", exact=True).select_option("scheduling")
    await manager.get_by_label("Prevention action", exact=True).fill("confirm slots the day before")
    await manager.get_by_role("button", name="Resolve").click()
    await expect(manager.get_by_role("status")).to_contain_text("Case resolved")
    await manager.get_by_label("Yes, satisfied", exact=True).check()
    await manager.get_by_label("What the customer said", exact=True).fill("happy with the refund")
    await manager.get_by_role("button", name="Record follow-up").click()
    await expect(manager.locator(".facts")).to_contain_text("closed")
    await expect(manager.locator(".timeline")).to_contain_text("Followed up: the customer is satisfied")
    after = await api_case(service, case["case_id"])
    assert after["status"] == "closed"
    assert [c["status"] for c in after["compensations"]] == ["requested"]  # approved: sent to billing


async def test_the_console_refuses_a_forged_approve_a_form_without_csrf_and_a_stale_version(
    browser: Browser, service: ServiceProcess, producer: AIOKafkaProducer, settings: Settings
) -> None:
    case = await case_from_signal(service, producer, settings, "refuse-browser")
    body = {"kind": "refund", "amount": "300", "currency": "EUR", "reason": "broken heater"}
    agent_auth = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with httpx.AsyncClient(base_url=service.url) as api:
        path = f"/v1/cases/{case['case_id']}"
        asked = (await api.post(f"{path}/compensations", json=body, headers=agent_auth)).json()
    request_id = asked["compensations"][0]["request_id"]

    agent = await signed_in(browser, service.url, AGENT_TOKEN)
    await agent.goto(f"{service.url}/console/cases/{case['case_id']}")
    await expect(agent.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)
    forged = f"/console/cases/{case['case_id']}/compensations/{request_id}/approve"
    await agent.evaluate(  # the approve form, built by hand with the page's own CSRF token and version
        """action => { const f = document.querySelector('form[action$="/notes"]').cloneNode(true);
           f.action = action; f.querySelector('textarea').remove(); document.body.append(f); f.submit(); }""",
        forged,
    )
    await expect(agent.get_by_role("alert")).to_contain_text("role agent may not approve compensation")
    assert (await api_case(service, case["case_id"]))["compensations"][0]["status"] == "awaiting_approval"

    await agent.goto(f"{service.url}/console/approvals")
    await expect(agent.get_by_role("alert")).to_contain_text("not for your role")

    await agent.goto(f"{service.url}/console/cases/{case['case_id']}")
    await agent.locator('form[action$="/notes"] input[name="csrf"]').evaluate("el => el.remove()")
    await agent.get_by_label("Note", exact=True).fill("no csrf")
    await agent.get_by_role("button", name="Add note").click()
    await expect(agent.get_by_role("alert")).to_contain_text("expired or was not sent by the console")

    await agent.goto(f"{service.url}/console/cases/{case['case_id']}")
    async with httpx.AsyncClient(base_url=service.url) as api:  # a colleague changes the case meanwhile
        moved = await api.post(f"/v1/cases/{case['case_id']}/assign", json={"owner": "bo"}, headers=AUTH)
    assert moved.status_code == 200
    await agent.get_by_label("Note", exact=True).fill("decided on the old version")
    await agent.get_by_role("button", name="Add note").click()
    await expect(agent.locator("#note-refusal")).to_contain_text("changed since you loaded it")
    events = (await api_case(service, case["case_id"]))["events"]
    assert "case.note_added" not in [e["type"] for e in events]  # nothing applied
