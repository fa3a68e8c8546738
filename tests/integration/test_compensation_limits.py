"""Limits that hold in every currency and across cases, through the API over PostgreSQL (issue 19)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.api_only import api_over
from tests.support import AGENT, AUTH, MANAGER


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url) as client:
        yield client


async def opened(api: httpx.AsyncClient, customer: str, stake: str | None = "10000", currency: str = "EUR") -> str:
    body: dict[str, Any] = {"customer_id": customer, "severity": "major", "reason": "escalated"}
    if stake is not None:
        body["amount_at_stake"] = {"amount": stake, "currency": currency}
    answer = await api.post("/v1/cases", json=body, headers=MANAGER)
    assert answer.status_code == 201, answer.text
    return answer.json()["case_id"]  # type: ignore[no-any-return]


async def compensate(
    api: httpx.AsyncClient, case_id: str, amount: str, who: dict[str, str] = AGENT, currency: str = "EUR"
) -> dict[str, Any]:
    body = {"kind": "credit", "amount": amount, "currency": currency, "reason": "goodwill"}
    answer = await api.post(f"/v1/cases/{case_id}/compensations", json=body, headers=who)
    assert answer.status_code == 200, answer.text
    return answer.json()["compensations"][-1]  # type: ignore[no-any-return]


async def resolve(api: httpx.AsyncClient, case_id: str) -> None:
    body = {"resolution_type": "service_credit", "root_cause": "scheduling", "prevention_action": "rota fixed"}
    answer = await api.post(f"/v1/cases/{case_id}/resolve", json=body, headers=MANAGER)
    assert answer.status_code == 200, answer.text


async def test_an_agent_may_not_open_a_case_by_hand(api: httpx.AsyncClient) -> None:
    body = {"customer_id": "hand-1", "severity": "major", "reason": "escalated"}
    answer = await api.post("/v1/cases", json=body, headers=AGENT)
    assert answer.status_code == 403 and "open a case by hand" in answer.json()["detail"]
    assert (await api.get("/v1/cases", params={"customer_id": "hand-1"}, headers=AUTH)).json()["items"] == []


async def test_on_a_hand_opened_case_without_a_stake_every_compensation_waits(api: httpx.AsyncClient) -> None:
    bare = await opened(api, "hand-2", stake=None)
    assert (await compensate(api, bare, "1"))["status"] == "awaiting_approval"


async def test_fifty_of_a_currency_without_limits_waits_for_an_owner_and_a_fund_code_is_refused(
    api: httpx.AsyncClient,
) -> None:
    case_id = await opened(api, "kwd-1", stake="10000", currency="KWD")
    held = await compensate(api, case_id, "50", currency="KWD")
    assert held["status"] == "awaiting_approval"
    assert held["needs_approval"] == ["no limits are set in KWD: every compensation in it waits for an owner"]
    manager = await api.post(f"/v1/cases/{case_id}/compensations/{held['request_id']}/approve", headers=MANAGER)
    assert manager.status_code == 403 and "an owner must approve" in manager.json()["detail"]
    owner = await api.post(f"/v1/cases/{case_id}/compensations/{held['request_id']}/approve", headers=AUTH)
    assert owner.json()["compensations"][0]["status"] == "requested"

    fund = await opened(api, "clf-1", stake=None)
    body = {"kind": "refund", "amount": "50", "currency": "CLF", "reason": "x"}
    refused = await api.post(f"/v1/cases/{fund}/compensations", json=body, headers=AGENT)
    assert refused.status_code == 422 and refused.json()["field"] == "currency"
    assert "fund code" in refused.json()["detail"]


async def test_what_a_customer_received_on_earlier_cases_counts_and_the_case_shows_it(
    api: httpx.AsyncClient,
) -> None:
    first = await opened(api, "cust-total")
    assert (await compensate(api, first, "480", MANAGER))["status"] == "requested"
    await resolve(api, first)
    second = await opened(api, "cust-total")
    assert (await compensate(api, second, "480", MANAGER))["status"] == "requested"  # 960 of 1,000
    held = await compensate(api, second, "41")
    assert held["status"] == "awaiting_approval"
    assert held["needs_approval"] == [
        "above the customer limit of 1000 EUR in 90 days: customer cust-total received 960.00 EUR already"
    ]
    approve = f"/v1/cases/{second}/compensations/{held['request_id']}/approve"
    assert (await api.post(approve, headers=MANAGER)).status_code == 403  # only an owner ends that wait
    assert (await api.post(approve, headers=AUTH)).json()["compensations"][-1]["status"] == "requested"
    detail = (await api.get(f"/v1/cases/{second}", headers=AGENT)).json()
    received = [{"amount": "1001.00", "currency": "EUR"}]
    assert detail["customer_compensation"] == {"window_days": 90, "received": received}


async def test_an_agent_splitting_refunds_across_customers_meets_the_daily_limit(api: httpx.AsyncClient) -> None:
    cases = [await opened(api, f"daily-{n}") for n in range(5)]
    for case_id in cases[:4]:
        assert (await compensate(api, case_id, "50"))["status"] == "requested"
    held = await compensate(api, cases[4], "1")
    assert held["status"] == "awaiting_approval"
    assert held["needs_approval"] == [
        "above the daily agent limit of 200 EUR: ana granted without approval 200.00 EUR already"
    ]


async def test_two_requests_for_one_customer_on_two_cases_at_once_never_pass_its_limit_together(
    api: httpx.AsyncClient,
) -> None:
    first = await opened(api, "race-1")
    assert (await compensate(api, first, "450", MANAGER))["status"] == "requested"
    await resolve(api, first)  # a resolved case still takes compensations
    second = await opened(api, "race-1")
    assert (await compensate(api, second, "450", AUTH))["status"] == "requested"  # 900 of 1,000
    # each alone stays within the customer's 1,000 EUR; both together would not
    both = await asyncio.gather(compensate(api, first, "50"), compensate(api, second, "60", MANAGER))
    assert sorted(c["status"] for c in both) == ["awaiting_approval", "requested"]


ROLES = {"agent": AGENT, "manager": MANAGER, "owner": AUTH}
# the most each role sends at once on a fresh customer: its per-case limit, the owner's the customer's (built-in table)
WITHIN = {"EUR": {"agent": 50, "manager": 500, "owner": 1000}, "GBP": {"agent": 40, "manager": 400, "owner": 800}}


@pytest.mark.parametrize("role", ["agent", "manager", "owner"])
@pytest.mark.parametrize("currency", ["EUR", "GBP", "KWD", "JPY", "CLF", "UYW"])
@pytest.mark.parametrize("above", [False, True])
async def test_the_limit_matrix_every_role_and_currency_through_the_api(
    api: httpx.AsyncClient, role: str, currency: str, above: bool
) -> None:
    """Within every limit in a configured currency: to billing at once; a unit above one, in a currency without
    limits, or a fund code: never to billing without an approval (or refused)."""
    fund = currency in ("CLF", "UYW")  # not money a customer is paid in: not a stake either
    customer = f"matrix-{role}-{currency}-{above}"
    case_id = await opened(api, customer, stake=None if fund else "100000", currency=currency)
    limit = WITHIN.get(currency, {}).get(role, 50)
    body = {"kind": "credit", "amount": str(limit + above), "currency": currency, "reason": "goodwill"}
    answer = await api.post(f"/v1/cases/{case_id}/compensations", json=body, headers=ROLES[role])
    if fund:
        assert answer.status_code == 422 and answer.json()["field"] == "currency"
        assert "fund code" in answer.json()["detail"]
        return
    [request] = answer.json()["compensations"]
    goes_at_once = currency in WITHIN and not above
    assert request["status"] == ("requested" if goes_at_once else "awaiting_approval"), request
