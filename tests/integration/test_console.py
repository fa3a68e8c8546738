"""The console over HTTP, on a migrated database: sessions, CSRF, the version check and refusals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.adapters.http.console import routes
from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.support import AUTH, TOKEN

AGENT_AUTH = {"Authorization": "Bearer test-agent-token-for-the-suite-only"}
MANAGER_AUTH = {"Authorization": "Bearer test-manager-token-for-the-suite-only"}

AGENT_TOKEN = "test-agent-token-for-the-suite-only"
MANAGER_TOKEN = "test-manager-token-for-the-suite-only"


@pytest.fixture
async def app(pool: asyncpg.Pool, database_url: str) -> Any:
    settings = Settings(
        database_url=database_url,
        api_tokens={
            TOKEN: ApiToken(actor="tester", role="owner"),
            AGENT_TOKEN: ApiToken(actor="ana", role="agent"),
            MANAGER_TOKEN: ApiToken(actor="mia", role="manager"),
        },
        root_causes=["scheduling", "billing_error"],
    )
    service = Service(settings)
    service.pool = pool
    return http_app(service, settings)


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does (a dotted host, so the cookie jar keeps them)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        yield client


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    csrf = await csrf_of(client, "/console/sign-in")
    return await client.post("/console/sign-in", data={"csrf": csrf, "token": token})


async def open_case(client: httpx.AsyncClient, customer: str, currency: str = "EUR") -> dict[str, Any]:
    """Opened by hand by an owner, with a stake (without one, every compensation on it would wait)."""
    body = {
        "customer_id": customer,
        "severity": "major",
        "channel": "phone",
        "reason": "escalated by phone",
        "amount_at_stake": {"amount": "1000", "currency": currency},
    }
    opened = await client.post("/v1/cases", json=body, headers=AUTH)
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


async def test_a_wrong_token_is_refused_and_a_known_one_opens_a_session(browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/console/queue")).headers["location"] == "/console/sign-in"
    wrong = await sign_in(browser, "not-a-token")
    assert wrong.status_code == 401 and "not one this service knows" in wrong.text
    right = await sign_in(browser, TOKEN)
    assert right.status_code == 303 and right.headers["location"] == "/console/queue"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert TOKEN not in right.headers["set-cookie"]  # the cookie names the token by its hash only
    queue = await browser.get("/console/queue")
    assert queue.status_code == 200 and "Signed in as <strong>tester</strong>" in queue.text


async def test_a_forged_or_tampered_cookie_is_no_session(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, TOKEN)
    cookie = browser.cookies.get("recovery_console")
    assert cookie is not None
    browser.cookies.clear()
    browser.cookies.set("recovery_console", cookie[:-2] + ("00" if cookie[-2:] != "00" else "11"))
    assert (await browser.get("/console/queue")).status_code == 303
    browser.cookies.clear()
    odd = await browser.get("/console/queue", headers={b"cookie": "recovery_console=e30.é".encode()})
    assert odd.status_code == 303


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "csrf-1")
    await sign_in(browser, TOKEN)
    path = f"/console/cases/{case['case_id']}"
    forged = await browser.post(f"{path}/assign", data={"owner": "mallory", "version": case["version"]})
    assert forged.status_code == 403 and "expired or was not sent by the console" in forged.text
    wrong = await browser.post(f"{path}/assign", data={"owner": "x", "version": case["version"], "csrf": "x"})
    assert wrong.status_code == 403
    odd = await browser.post(f"{path}/assign", data={"owner": "x", "version": case["version"], "csrf": "é"})
    assert odd.status_code == 403
    after = (await browser.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    assert after["owner"] is None and after["version"] == case["version"]


async def test_assign_and_acknowledge_run_the_api_use_cases_and_show_in_the_timeline(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "work-1")
    await sign_in(browser, AGENT_TOKEN)
    path = f"/console/cases/{case['case_id']}"
    csrf = await csrf_of(browser, path)
    assigned = await browser.post(f"{path}/assign", data={"csrf": csrf, "owner": "ana", "version": "1"})
    assert assigned.status_code == 303 and assigned.headers["location"].endswith("?done=assign")
    acked = await browser.post(f"{path}/acknowledge", data={"csrf": csrf, "version": "2"})
    assert acked.status_code == 303
    after = (await browser.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    assert after["owner"] == "ana" and after["acknowledged_at"] is not None
    assert [e["data"]["actor"] for e in after["events"][1:]] == ["ana", "ana"]
    page = (await browser.get(path)).text
    assert 'Assigned to ana <span class="by">by ana</span>' in page
    assert 'Recorded the first response to the customer <span class="by">by ana</span>' in page


async def test_a_stale_version_is_refused_with_a_message_to_reload(browser: httpx.AsyncClient) -> None:
    case = await open_case(browser, "stale-1")
    await sign_in(browser, TOKEN)
    path = f"/console/cases/{case['case_id']}"
    csrf = await csrf_of(browser, path)
    await browser.post(f"{path}/assign", data={"csrf": csrf, "owner": "ana", "version": "1"})
    stale = await browser.post(f"{path}/assign", data={"csrf": csrf, "owner": "bob", "version": "1"})
    assert stale.status_code == 412
    assert "This case changed since you loaded it" in stale.text and "Reload the page" in stale.text
    after = (await browser.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    assert after["owner"] == "ana" and after["version"] == 2


async def test_a_refused_action_shows_the_domain_reason_next_to_its_form(browser: httpx.AsyncClient) -> None:
    case = await open_case(browser, "refused-1")
    await sign_in(browser, AGENT_TOKEN)
    path = f"/console/cases/{case['case_id']}"
    csrf = await csrf_of(browser, path)
    blank = await browser.post(f"{path}/assign", data={"csrf": csrf, "owner": "  ", "version": "1"})
    assert (
        blank.status_code == 422 and 'id="assign-refusal"' in blank.text and "owner is required" in blank.text
    )
    api = await browser.post(f"/v1/cases/{case['case_id']}/assign", json={"owner": "  "}, headers=AUTH)
    assert api.status_code == 422  # the API refuses the same, for the same reason
    assert (await browser.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()["version"] == 1


async def test_the_queue_filters_unassigned_mine_severity_and_customer(browser: httpx.AsyncClient) -> None:
    first = await open_case(browser, "queue-a")
    await open_case(browser, "queue-b")
    await browser.post(f"/v1/cases/{first['case_id']}/assign", json={"owner": "tester"}, headers=AUTH)
    await sign_in(browser, TOKEN)
    everything = (await browser.get("/console/queue")).text
    assert "queue-a" in everything and "queue-b" in everything
    mine = (await browser.get("/console/queue", params={"mine": "true"})).text
    assert "queue-a" in mine and "queue-b" not in mine
    unassigned = (await browser.get("/console/queue", params={"unassigned": "true"})).text
    assert "queue-b" in unassigned and "queue-a" not in unassigned
    minor = (await browser.get("/console/queue", params={"severity": "minor"})).text
    assert "No open cases match" in minor
    one = (await browser.get("/console/queue", params={"customer": "queue-b", "severity": ""})).text
    assert "queue-b" in one and "queue-a" not in one
    bad = await browser.get("/console/queue", params={"cursor": "forged"})
    assert bad.status_code == 200 and "not one this console made" in bad.text


async def test_signing_out_ends_the_session(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, TOKEN)
    csrf = await csrf_of(browser, "/console/queue")
    out = await browser.post("/console/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    assert (await browser.get("/console/queue")).headers["location"] == "/console/sign-in"


async def test_the_console_assets_are_served_by_the_service(browser: httpx.AsyncClient) -> None:
    script = await browser.get("/console/static/console.js")
    assert script.status_code == 200 and "countdown" in script.text
    assert (await browser.get("/console/static/../routes.py")).status_code == 404


async def test_the_queue_pages_on_the_reads_keyset_cursor(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    for customer in ("page-1", "page-2", "page-3"):
        await open_case(browser, customer)
    await sign_in(browser, TOKEN)
    first = (await browser.get("/console/queue")).text
    assert first.count("Open case ") == 2 and "First page" not in first
    found = re.search(r'rel="next" href="([^"]+)"', first)
    assert found
    second = (await browser.get(found.group(1).replace("&amp;", "&"))).text
    assert second.count("Open case ") == 1 and "Next page" not in second and "First page" in second


async def post_form(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """Submit a form of the case page as the page offers it: its CSRF token and the case version it shows."""
    case_path = "/".join(path.split("/")[:4])  # /console/cases/<id>
    page = (await client.get(case_path)).text
    found = re.search(r'name="csrf" value="([^"]+)"><input type="hidden" name="version" value="(\d+)"', page)
    assert found, page
    return await client.post(path, data={"csrf": found.group(1), "version": found.group(2), **fields})


async def case_of(client: httpx.AsyncClient, case_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/v1/cases/{case_id}", headers=AUTH)).json())


async def test_every_action_runs_the_api_decider_and_reads_as_a_sentence_in_the_timeline(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "walk-1")
    path = f"/console/cases/{case['case_id']}"
    await sign_in(browser, MANAGER_TOKEN)
    page = (await browser.get(path)).text
    assert (
        'id="pause-title"' in page and "Why this deadline" in page
    )  # the pause form and the clocks' reasons
    assert (await post_form(browser, f"{path}/steps", kind="call_customer")).status_code == 303
    done = await post_form(browser, f"{path}/steps/step-1/outcome", outcome="completed", notes="said sorry")
    assert done.status_code == 303 and done.headers["location"].endswith("?done=outcome")
    asked = await post_form(
        browser, f"{path}/compensations", kind="credit", amount="20", currency="EUR", reason="late"
    )
    assert asked.status_code == 303
    noted = await post_form(browser, f"{path}/notes", note="prefers email")
    assert noted.status_code == 303
    resolved = await post_form(
        browser,
        f"{path}/resolve",
        resolution_type="apology_only",
        root_cause="scheduling",
        prevention_action="buffer",
    )
    assert resolved.status_code == 303, resolved.text
    unhappy = await post_form(browser, f"{path}/follow-up", satisfied="no", notes="still cross")
    assert unhappy.status_code == 303
    assert (await case_of(browser, case["case_id"]))["status"] == "open"
    await post_form(
        browser,
        f"{path}/resolve",
        resolution_type="apology_only",
        root_cause="scheduling",
        prevention_action="x",
    )
    assert (await post_form(browser, f"{path}/follow-up", satisfied="yes")).status_code == 303
    assert (await case_of(browser, case["case_id"]))["status"] == "closed"
    assert (await post_form(browser, f"{path}/reopen", reason="customer called again")).status_code == 303
    after = await case_of(browser, case["case_id"])
    assert after["status"] == "open" and after["reopen_count"] == 2
    page = (await browser.get(path)).text
    for sentence in (
        "Planned step-1: call customer",
        "Recorded step-1 as completed",
        "<blockquote>said sorry</blockquote>",
        "Requested a credit of 20.00 EUR; it went to billing",
        "Added an internal note",
        "<blockquote>prefers email</blockquote>",
        "Resolved (apology only), root cause scheduling",
        "Followed up: the customer is not satisfied",
        "Closed",
        "<blockquote>customer called again</blockquote>",
        "<td>completed by mia</td>",
        "<td>credit of 20.00 EUR</td>",
    ):
        assert sentence in page, sentence


async def test_an_agent_sees_no_resolve_or_approve_and_a_forged_approve_is_refused(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "roles-1")
    body = {"kind": "refund", "amount": "400", "currency": "EUR", "reason": "ruined evening"}
    asked = await browser.post(f"/v1/cases/{case['case_id']}/compensations", json=body, headers=AGENT_AUTH)
    [waiting] = asked.json()["compensations"]
    assert waiting["status"] == "awaiting_approval"
    path = f"/console/cases/{case['case_id']}"
    await sign_in(browser, AGENT_TOKEN)
    page = (await browser.get(path)).text
    assert "Add a step" in page and "Internal note" in page
    assert ">Resolve</button>" not in page and "Approve 400.00 EUR" not in page
    forged = await post_form(browser, f"{path}/compensations/{waiting['request_id']}/approve")
    assert forged.status_code == 403 and "role agent may not approve compensation" in forged.text
    assert (await case_of(browser, case["case_id"]))["compensations"][0]["status"] == "awaiting_approval"


async def test_a_refused_form_shows_its_reason_next_to_it_and_changes_nothing(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "refuse-2")
    path = f"/console/cases/{case['case_id']}"
    await sign_in(browser, TOKEN)
    no_cause = await post_form(
        browser, f"{path}/resolve", resolution_type="apology_only", prevention_action="x"
    )
    assert no_cause.status_code == 422 and 'id="resolve-refusal"' in no_cause.text
    assert "root_cause is required" in no_cause.text
    bad_amount = await post_form(
        browser, f"{path}/compensations", kind="credit", amount="ten", currency="EUR", reason="r"
    )
    assert (
        bad_amount.status_code == 422
        and 'id="comp-refusal"' in bad_amount.text
        and "amount" in bad_amount.text
    )
    blank_note = await post_form(browser, f"{path}/notes", note="   ")
    assert blank_note.status_code == 422 and "note is required" in blank_note.text
    assert (await browser.post(f"{path}/no-such-action", data={})).status_code == 404
    assert (await case_of(browser, case["case_id"]))["version"] == 1


async def test_approvals_list_what_waits_across_cases_and_approve_with_four_eyes(
    browser: httpx.AsyncClient,
) -> None:
    first = await open_case(browser, "approve-1")
    second = await open_case(browser, "approve-2")
    body = {"kind": "refund", "amount": "400", "currency": "EUR", "reason": "ruined evening"}
    for case in (first, second):
        await browser.post(f"/v1/cases/{case['case_id']}/compensations", json=body, headers=AGENT_AUTH)
    own = {**body, "amount": "600"}
    mine = await browser.post(f"/v1/cases/{second['case_id']}/compensations", json=own, headers=MANAGER_AUTH)
    assert mine.json()["compensations"][1]["status"] == "awaiting_approval"  # above mia's limit

    await sign_in(browser, AGENT_TOKEN)
    refused = await browser.get("/console/approvals")
    assert refused.status_code == 403 and "not for your role" in refused.text

    await sign_in(browser, MANAGER_TOKEN)
    page = (await browser.get("/console/approvals")).text
    assert page.count("Approve 400.00 EUR") == 2 and "Approve 600.00 EUR" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    request_id = mine.json()["compensations"][1]["request_id"]
    version = str(mine.json()["version"])
    four_eyes = await browser.post(
        f"/console/approvals/{second['case_id']}/{request_id}",
        data={"csrf": csrf.group(1), "version": version},
    )
    assert four_eyes.status_code == 403 and "four eyes" in four_eyes.text and 'role="alert"' in four_eyes.text
    first_id = (await case_of(browser, first["case_id"]))["compensations"][0]["request_id"]
    approved = await browser.post(
        f"/console/approvals/{first['case_id']}/{first_id}", data={"csrf": csrf.group(1), "version": "2"}
    )
    assert approved.status_code == 303 and approved.headers["location"] == "/console/approvals?done=approved"
    assert (await case_of(browser, first["case_id"]))["compensations"][0]["approved_by"] == "mia"
    after = (await browser.get("/console/approvals?done=approved")).text
    assert "Compensation approved" in after and after.count("Approve 400.00 EUR") == 1


async def test_a_case_pauses_and_resumes_from_the_console_with_its_until_read_as_utc(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "pause-1")
    path = f"/console/cases/{case['case_id']}"
    await sign_in(browser, AGENT_TOKEN)
    paused = await post_form(browser, f"{path}/pause", reason="awaiting_parts", until="2099-01-02T10:30")
    assert paused.status_code == 303 and paused.headers["location"].endswith("?done=pause")
    pause = (await case_of(browser, case["case_id"]))["paused"]
    assert (pause["reason"], pause["until"]) == ("awaiting_parts", "2099-01-02T10:30:00Z")
    page = (await browser.get(path)).text
    assert "Paused, awaiting parts; it resumes by itself" in page
    assert "paused: the deadline moves when the case resumes" in page  # each clock the pause holds
    assert f'action="{path}/resume"' in page and f'action="{path}/pause"' not in page
    resumed = await post_form(browser, f"{path}/resume")
    assert resumed.status_code == 303
    assert (await case_of(browser, case["case_id"]))["paused"] is None
    assert "Resumed: the pause was ended by staff" in (await browser.get(path)).text
    past = await post_form(browser, f"{path}/pause", reason="awaiting_parts", until="2001-01-01T00:00")
    assert past.status_code == 422 and (await case_of(browser, case["case_id"]))["paused"] is None
    assert 'id="pause-refusal"' in past.text and "until must be in the future" in past.text


async def test_the_approvals_page_pages_on_the_cases_keyset_cursor(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.adapters.http.console import approvals_page

    monkeypatch.setattr(approvals_page, "PAGE_SIZE", 1)
    body = {"kind": "refund", "amount": "400", "currency": "EUR", "reason": "ruined evening"}
    for customer in ("approve-page-1", "approve-page-2"):
        case = await open_case(browser, customer)
        await browser.post(f"/v1/cases/{case['case_id']}/compensations", json=body, headers=AGENT_AUTH)
    await sign_in(browser, MANAGER_TOKEN)
    first = (await browser.get("/console/approvals")).text
    assert first.count("Approve 400.00 EUR") == 1 and "First page" not in first
    found = re.search(r'rel="next" href="([^"]+)"', first)
    assert found
    second = (await browser.get(found.group(1).replace("&amp;", "&"))).text
    assert second.count("Approve 400.00 EUR") == 1 and "First page" in second
    forged = await browser.get("/console/approvals", params={"cursor": "forged"})
    assert forged.status_code == 200 and "not one this console made" in forged.text


async def test_the_console_holds_a_currency_without_limits_for_an_owner_and_shows_the_customers_total(
    browser: httpx.AsyncClient,
) -> None:
    case = await open_case(browser, "kwd-console", currency="KWD")
    path = f"/console/cases/{case['case_id']}"
    await sign_in(browser, AGENT_TOKEN)
    asked = await post_form(browser, f"{path}/compensations", kind="credit", amount="50", currency="KWD", reason="r")
    assert asked.status_code == 303
    [held] = (await case_of(browser, case["case_id"]))["compensations"]
    assert held["status"] == "awaiting_approval"
    assert "no limits are set in KWD" in (await browser.get(path)).text
    fund = await post_form(browser, f"{path}/compensations", kind="credit", amount="5", currency="CLF", reason="r")
    assert fund.status_code == 422 and "CLF" in fund.text

    await sign_in(browser, MANAGER_TOKEN)
    page = (await browser.get("/console/approvals")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf and "Approve 50.000 KWD" in page
    approve = f"/console/approvals/{case['case_id']}/{held['request_id']}"
    version = str((await case_of(browser, case["case_id"]))["version"])
    by_manager = await browser.post(approve, data={"csrf": csrf.group(1), "version": version})
    assert by_manager.status_code == 403 and "an owner must approve" in by_manager.text
    assert (await case_of(browser, case["case_id"]))["compensations"][0]["status"] == "awaiting_approval"

    await sign_in(browser, TOKEN)
    csrf = re.search(r'name="csrf" value="([^"]+)"', (await browser.get("/console/approvals")).text)
    assert csrf
    by_owner = await browser.post(approve, data={"csrf": csrf.group(1), "version": version})
    assert by_owner.status_code == 303
    shown = (await browser.get(path)).text
    assert "Customer kwd-console received in the last 90 days" in shown and "50.000 KWD" in shown
