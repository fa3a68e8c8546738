"""Working a case over HTTP, against the real database and broker: the rules are the domain's."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from service.config import Settings
from service.domain.signals import SignalKind
from tests.integration.api_only import api_over
from tests.support import AGENT, MANAGER, eventually, publish, signal_event


@pytest.fixture
async def case(api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings) -> dict[str, Any]:
    customer = "work-1"
    event = signal_event(SignalKind.NPS, customer, {"score": 2, "channel": "phone"})
    await publish(producer, settings.topic_nps, customer, event)

    async def opened() -> dict[str, Any] | None:
        page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AGENT)).json()
        return page["items"][0] if page["items"] else None

    return await eventually(opened, what="the case")


async def timers(database_url: str, case_id: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT sla, kind FROM sla_timers WHERE case_id = $1", case_id)
    finally:
        await conn.close()
    return {(r["sla"], r["kind"]) for r in rows}


async def test_a_case_is_worked_from_first_contact_to_closed(
    api: httpx.AsyncClient, case: dict[str, Any], database_url: str
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    assert ("first_response", "breach") in await timers(database_url, case["case_id"])

    assigned = await api.post(f"{path}/assign", json={"owner": "ana"}, headers=MANAGER)
    assert assigned.status_code == 200 and assigned.json()["owner"] == "ana"
    step = await api.post(f"{path}/steps", json={"kind": "call_customer"}, headers=AGENT)
    assert step.json()["steps"][0]["step_id"] == "step-1"
    done = await api.post(
        f"{path}/steps/step-1/outcome", json={"outcome": "completed", "notes": "apologised"}, headers=AGENT
    )
    assert done.status_code == 200 and done.json()["acknowledged_at"] is not None
    assert {sla for sla, _ in await timers(database_url, case["case_id"])} == {"resolution"}

    resolved = await api.post(
        f"{path}/resolve",
        json={
            "resolution_type": "apology_only",
            "root_cause": "scheduling",
            "prevention_action": "buffer slots",
        },
        headers=MANAGER,
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert await timers(database_url, case["case_id"]) == {("resolution", "follow_up")}  # clocks stopped

    unhappy = await api.post(f"{path}/follow-up", json={"satisfied": False}, headers=AGENT)
    assert unhappy.json()["status"] == "open" and unhappy.json()["reopen_count"] == 1
    assert ("resolution", "breach") in await timers(database_url, case["case_id"])
    again = {
        "resolution_type": "service_credit",
        "root_cause": "scheduling",
        "prevention_action": "call ahead",
    }
    assert (await api.post(f"{path}/resolve", json=again, headers=MANAGER)).status_code == 200
    closed = await api.post(
        f"{path}/follow-up", json={"satisfied": True, "notes": "happy now"}, headers=AGENT
    )
    assert closed.json()["status"] == "closed"

    history = [e["type"] for e in (await api.get(path, headers=AGENT)).json()["events"]]
    assert [t for t in history if not t.startswith("case.sla")] == [
        "case.opened",
        "case.assigned",
        "case.step_added",
        "case.step_recorded",
        "case.resolved",
        "case.follow_up_recorded",
        "case.reopened",
        "case.resolved",
        "case.follow_up_recorded",
        "case.closed",
    ]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"prevention_action": "x", "resolution_type": "apology_only"}, 422, "root_cause"),
        ({"root_cause": "scheduling", "resolution_type": "apology_only"}, 422, "prevention_action"),
        ({"root_cause": "scheduling", "prevention_action": "x"}, 422, "resolution_type"),
        (
            {"root_cause": "gremlins", "prevention_action": "x", "resolution_type": "apology_only"},
            422,
            "root_cause",
        ),
        (
            {"root_cause": "scheduling", "prevention_action": "x", "resolution_type": "bribe"},
            422,
            "resolution_type",
        ),
    ],
)
async def test_an_incomplete_resolution_is_refused_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, case: dict[str, Any], body: dict[str, str], status: int, field: str
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    before = (await api.get(path, headers=AGENT)).json()
    refused = await api.post(f"{path}/resolve", json=body, headers=MANAGER)
    assert refused.status_code == status
    assert refused.json()["field"] == field
    after = (await api.get(path, headers=AGENT)).json()
    assert after["version"] == before["version"] and after["status"] == "open"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), (AGENT, 403), (MANAGER, 200)],
)
async def test_only_managers_and_owners_resolve_and_refusals_change_nothing(
    api: httpx.AsyncClient, case: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    body = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "x"}
    answer = await api.post(f"{path}/resolve", json=body, headers=headers)
    assert answer.status_code == status
    expected = "resolved" if status == 200 else "open"
    assert (await api.get(path, headers=MANAGER)).json()["status"] == expected


async def test_a_repeated_idempotency_key_returns_the_first_answer_and_changes_nothing(
    api: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    key = {"Idempotency-Key": "add-call-1"}
    first = await api.post(f"{path}/steps", json={"kind": "call_customer"}, headers={**AGENT, **key})
    second = await api.post(f"{path}/steps", json={"kind": "call_customer"}, headers={**AGENT, **key})
    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()
    assert len((await api.get(path, headers=AGENT)).json()["steps"]) == 1
    reused = await api.post(f"{path}/assign", json={"owner": "x"}, headers={**AGENT, **key})
    assert reused.status_code == 422 and reused.json()["field"] == "Idempotency-Key"


async def test_commands_on_an_unknown_case_are_404(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/cases/nope/acknowledge", headers=AGENT)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


async def test_staff_open_a_case_by_hand_but_never_a_second_open_one(api: httpx.AsyncClient) -> None:
    body = {"customer_id": "vip-9", "severity": "critical", "channel": "phone", "reason": "CEO escalation"}
    opened = await api.post("/v1/cases", json=body, headers={**MANAGER, "Idempotency-Key": "open-vip-9"})
    assert opened.status_code == 201
    case = opened.json()
    assert case["severity"] == "critical" and case["signals"] == [] and case["status"] == "open"
    again = await api.post("/v1/cases", json=body, headers={**MANAGER, "Idempotency-Key": "open-vip-9"})
    assert again.status_code == 201 and again.json() == case
    second = await api.post("/v1/cases", json=body, headers=MANAGER)
    assert second.status_code == 409 and case["case_id"] in second.json()["detail"]
    history = (await api.get(f"/v1/cases/{case['case_id']}", headers=AGENT)).json()["events"]
    assert history[0]["data"]["opened_by"] == "mia" and history[0]["data"]["reason"] == "CEO escalation"


async def test_an_older_case_is_not_reopened_while_the_customer_has_a_newer_open_case_409_not_500(
    pool: asyncpg.Pool, database_url: str
) -> None:
    async with api_over(pool, database_url) as api:
        body = {"customer_id": "two-cases", "severity": "major", "reason": "escalated"}
        older = (await api.post("/v1/cases", json=body, headers=MANAGER)).json()["case_id"]
        resolution = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "x"}
        resolved = await api.post(f"/v1/cases/{older}/resolve", json=resolution, headers=MANAGER)
        assert resolved.status_code == 200
        newer = (await api.post("/v1/cases", json=body, headers=MANAGER)).json()["case_id"]
        before = (await api.get(f"/v1/cases/{older}", headers=AGENT)).json()

        unhappy = await api.post(f"/v1/cases/{older}/follow-up", json={"satisfied": False}, headers=AGENT)
        reopened = await api.post(f"/v1/cases/{older}/reopen", json={"reason": "called"}, headers=MANAGER)
        for refused in (unhappy, reopened):
            assert refused.status_code == 409, refused.text
            assert refused.json() == {
                "error": "wrong_state",
                "detail": f"customer two-cases has a newer open case {newer}: work that one",
                "field": None,
            }
        assert (await api.get(f"/v1/cases/{older}", headers=AGENT)).json() == before
        happy = await api.post(f"/v1/cases/{older}/follow-up", json={"satisfied": True}, headers=AGENT)
        assert happy.status_code == 200 and happy.json()["status"] == "closed"
