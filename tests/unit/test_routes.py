"""Every route of the API and the console, in-process, over the in-memory backend (tests/fake_service.py).

The tour walks one case through its whole life by the API and by the console's forms and then asserts that it
requested every route the app has: a route added without being exercised here fails it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from service.adapters.http.request_metrics import route_template
from service.api_tokens import ApiToken
from service.app.commands import land_compensation_result
from service.app.incidents import link_customers
from service.bootstrap import http_app
from service.config import Settings
from tests.fake_service import FakeBackend
from tests.fakes import FakeIncidentStore
from tests.support import DATA_KEYS, TOKEN

OWNER = {"Authorization": f"Bearer {TOKEN}"}
AGENT_TOKEN, MANAGER_TOKEN = "test-agent-token-for-the-suite-only", "test-manager-token-for-the-suite-only"
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
MANAGER = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
SETTINGS = Settings(
    database_url="postgresql://unused@localhost/unused",
    data_keys=DATA_KEYS,
    api_tokens={
        TOKEN: ApiToken(actor="tester", role="owner"),
        AGENT_TOKEN: ApiToken(actor="ana", role="agent"),
        MANAGER_TOKEN: ApiToken(actor="mia", role="manager"),
    },
    root_causes=["scheduling", "billing_error"],
)
OPEN = {
    "customer_id": "cust-1",
    "severity": "major",
    "channel": "phone",
    "reason": "escalated by phone",
    "amount_at_stake": {"amount": "1000", "currency": "EUR"},
}
RESOLVE = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "buffer slots"}


class RoutesHit:
    """An ASGI wrapper that notes the (method, route template) of every request the app answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.hit = app, set[tuple[str, str]]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.hit.add((scope["method"], route_template(scope)))


def every_route(app: Any) -> set[tuple[str, str]]:
    """(method, template) of each route, included routers walked (mounts are their own apps: not counted)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif getattr(r, "methods", None):
                found.update((m, prefix + r.path) for m in r.methods if m != "HEAD")

    walk(app.routes, "")
    return found


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(SETTINGS)


@pytest.fixture
async def client(backend: FakeBackend) -> AsyncIterator[tuple[httpx.AsyncClient, RoutesHit, Any]]:
    app = http_app(backend, SETTINGS, clock=backend.clock)
    hits = RoutesHit(app)
    transport = httpx.ASGITransport(app=hits)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as c:
        yield c, hits, app


async def ok(answer: Any, status: int = 200) -> httpx.Response:
    response: httpx.Response = await answer
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:500])
    return response


def form_of(page: str, action: str) -> dict[str, str]:
    """The hidden fields (csrf, version) of the page's form posting to `action`."""
    found = re.search(rf'action="{re.escape(action)}".*?</form>', page, re.S)
    assert found, f"no form for {action}"
    return dict(re.findall(r'name="(csrf|version)" value="([^"]*)"', found.group(0)))


async def test_a_case_goes_through_every_route_of_the_api_and_the_console(
    client: tuple[httpx.AsyncClient, RoutesHit, Any], backend: FakeBackend
) -> None:
    c, hits, app = client
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/asyncapi.json"):
        await ok(c.get(path))
    assert "recovery.case.opened" in (await ok(c.get("/asyncapi.json"))).text
    await ok(c.get("/asyncapi"))

    case = (await ok(c.post("/v1/cases", json=OPEN, headers=MANAGER), 201)).json()
    path = f"/v1/cases/{case['case_id']}"
    assert (await ok(c.post(f"{path}/assign", json={"owner": "ana"}, headers=MANAGER))).json()["owner"] == "ana"
    await ok(c.post(f"{path}/acknowledge", headers=AGENT))
    steps = (await ok(c.post(f"{path}/steps", json={"kind": "call_customer"}, headers=AGENT))).json()["steps"]
    step = f"{path}/steps/{steps[0]['step_id']}/outcome"
    await ok(c.post(step, json={"outcome": "completed", "notes": "apologised"}, headers=AGENT))
    large = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "full repair cost"}
    held = (await ok(c.post(f"{path}/compensations", json=large, headers=AGENT))).json()["compensations"][0]
    assert held["status"] == "awaiting_approval"
    await ok(c.post(f"{path}/notes", json={"note": "called back twice"}, headers=AGENT))
    await ok(c.put(f"{path}/summary", json={"summary": "water through the ceiling"}, headers=AGENT))
    await ok(c.post(f"{path}/pause", json={"reason": "awaiting_parts"}, headers=AGENT))
    await ok(c.post(f"{path}/resume", headers=AGENT))
    listed = (await ok(c.get("/v1/cases", headers=AGENT))).json()
    assert [x["case_id"] for x in listed["items"]] == [case["case_id"]]
    read = (await ok(c.get(path, headers=AGENT))).json()
    assert read["summary"] == "water through the ceiling" and read["version"] > case["version"]

    # the console: sign in, the queue, the case page, a form, the approvals, the trends
    sign_in = (await ok(c.get("/console/sign-in"))).text
    csrf = form_of(sign_in, "/console/sign-in")["csrf"]
    signed = await ok(c.post("/console/sign-in", data={"csrf": csrf, "token": MANAGER_TOKEN}), 303)
    assert signed.headers["location"].startswith("/console")
    await ok(c.get("/console"), 303)
    assert case["case_id"] in (await ok(c.get("/console/queue"))).text
    await ok(c.get("/console/queue/rows"))
    page = (await ok(c.get(f"/console/cases/{case['case_id']}"))).text
    note = f"/console/cases/{case['case_id']}/notes"
    await ok(c.post(note, data={**form_of(page, note), "note": "from the console"}), 303)
    approvals = (await ok(c.get("/console/approvals"))).text
    approve = f"/console/approvals/{case['case_id']}/{held['request_id']}"
    done = await ok(c.post(approve, data=form_of(approvals, approve)), 303)
    assert done.headers["location"] == "/console/approvals?done=approved"
    assert (await ok(c.get(path, headers=AGENT))).json()["compensations"][0]["status"] == "requested"
    static = re.search(r'href="(/console/static/[^"]+)"', page)
    assert static, "the case page links its stylesheet"
    await ok(c.get(static.group(1)))

    # resolved, its root cause counted, then reopened by an unhappy follow-up, resolved and closed
    await ok(c.post(f"{path}/resolve", json=RESOLVE, headers=MANAGER))
    causes = (await ok(c.get("/v1/trends/root-causes", headers=AGENT))).json()
    assert causes["tags"][0] == {"tag": "scheduling", "count": 1, "trend": False}
    await ok(c.get("/console/trends"))
    await ok(c.post(f"{path}/follow-up", json={"satisfied": False}, headers=AGENT))
    await ok(c.post(f"{path}/resolve", json=RESOLVE, headers=MANAGER))
    await ok(c.post(f"{path}/reopen", json={"reason": "called again"}, headers=MANAGER))
    backend.clock.advance(timedelta(hours=1))
    await ok(c.post(f"{path}/resolve", json=RESOLVE, headers=MANAGER))
    closed = (await ok(c.post(f"{path}/follow-up", json={"satisfied": True}, headers=AGENT))).json()
    assert closed["status"] == "closed"
    settled = closed["compensations"][0]["request_id"]
    again = await ok(c.post(f"{path}/compensations/{settled}/approve", headers=MANAGER))  # approved before
    assert again.json()["version"] == closed["version"]

    # an incident declared by hand, read, listed, refused to an agent, dismissed; a rule's proposal confirmed
    scope = {"service": "broadband", "region": "north-east"}
    await ok(c.post("/v1/incidents", json={"scope": scope}, headers=AGENT), 403)
    await ok(c.post("/v1/incidents", json={"scope": {"category": "other"}}, headers=MANAGER), 422)
    declared = (await ok(c.post("/v1/incidents", json={"scope": scope}, headers=MANAGER), 201)).json()
    assert declared["status"] == "declared" and declared["declared_by"] == "mia" and declared["detection"] is None
    await ok(c.post("/v1/incidents", json={"scope": scope}, headers=MANAGER), 409)  # open for the scope already
    incident = f"/v1/incidents/{declared['incident_id']}"
    detail = (await ok(c.get(incident, headers=AGENT))).json()
    assert [e["type"] for e in detail["history"]] == ["incident.declared"] and detail["cases"] == {}
    await ok(c.get("/v1/incidents/no-such-incident", headers=AGENT), 404)
    await ok(c.post(f"{incident}/confirm", headers=MANAGER))  # declared already: nothing changes
    dismissed = (await ok(c.post(f"{incident}/dismiss", json={"reason": "a test"}, headers=MANAGER))).json()
    assert dismissed["status"] == "dismissed" and dismissed["version"] == 2
    await ok(c.post(f"{incident}/dismiss", json={"reason": "again"}, headers=MANAGER), 409)
    listed = (await ok(c.get("/v1/incidents", params={"status": "dismissed"}, headers=AGENT))).json()
    assert [i["incident_id"] for i in listed["items"]] == [declared["incident_id"]]

    # sessions ended by an owner, the customer erased, signed out
    revoked = (await ok(c.post("/v1/sessions/revoke", json={"actor": "mia"}, headers=OWNER))).json()
    assert revoked == {"actor": "mia", "revoked": 1}
    await ok(c.get("/console/queue"), 303)  # the session is gone: back to sign-in
    await ok(c.post("/console/sign-out", data={"csrf": csrf}), 303)
    unsettled = (await ok(c.post("/v1/customers/cust-1/erase", headers=OWNER), 409)).json()
    assert "compensation" in unsettled["detail"]
    await land_compensation_result(settled, True, None, backend.store, backend.store, backend.rules.sla, None)
    erased = (await ok(c.post("/v1/customers/cust-1/erase", headers=OWNER))).json()
    assert erased["case_ids"] == [case["case_id"]]
    assert (await ok(c.get(path, headers=AGENT))).json()["customer_id"] == erased["pseudonym"]

    assert every_route(app) - hits.hit == set()
    metrics = (await ok(c.get("/metrics"))).text  # every route is counted under its own template
    assert 'route="/openapi.json"' in metrics and 'route="/console/cases/{case_id}/{action:path}"' in metrics


async def test_a_case_that_is_part_of_an_incident_says_so_on_its_page(
    client: tuple[httpx.AsyncClient, RoutesHit, Any], backend: FakeBackend
) -> None:
    c, _, _ = client
    case = (await ok(c.post("/v1/cases", json=OPEN, headers=MANAGER), 201)).json()
    csrf = form_of((await ok(c.get("/console/sign-in"))).text, "/console/sign-in")["csrf"]
    await ok(c.post("/console/sign-in", data={"csrf": csrf, "token": AGENT_TOKEN}), 303)
    page = f"/console/cases/{case['case_id']}"
    assert 'id="incident-banner"' not in (await ok(c.get(page))).text
    async with FakeIncidentStore(backend.store.database).transaction() as tx:
        assert await link_customers(tx, {"cust-1": "incident-7"}, backend.clock.now()) == 1
    shown = (await ok(c.get(page))).text
    assert 'id="incident-banner"' in shown and "incident-7" in shown
    assert (await ok(c.get(f"/v1/cases/{case['case_id']}", headers=AGENT))).json()["incident_id"] == "incident-7"
