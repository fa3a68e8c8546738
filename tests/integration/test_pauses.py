"""Pauses end to end: through the API, resumed by the timer worker when a (seconds-long) budget runs out or by
the customer's next signal, published on the case-events topic, and replayed equal to the live state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from service.adapters.postgres.projections import check_cases
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import AUTH, eventually, make_settings, publish, signal_event

POLICY = {"version": "pauses-1", "pause_budgets": {"awaiting_parts": "PT3S"}}


@pytest.fixture
def settings(kafka: Kafka, database_url: str, tmp_path: Path) -> Settings:
    path = tmp_path / "sla-policy.json"
    path.write_text(json.dumps(POLICY), encoding="utf-8")
    return make_settings(
        kafka,
        database_url,
        sla_resolution={s: "PT1H" for s in ("minor", "moderate", "major", "critical")},
        sla_first_response={c: "PT1H" for c in ("phone", "email", "chat", "social", "web", "in_person")},
        sla_policy_file=path,
    )


async def a_case(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, customer: str
) -> Any:
    await publish(
        producer,
        settings.topic_nps,
        f"{customer}-1",
        signal_event(SignalKind.NPS, customer, {"score": 1, "channel": "chat"}),
    )

    async def found() -> Any:
        page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AUTH)).json()
        return page["items"][0] if page.get("items") else None

    return await eventually(found, what=f"{customer}'s case")


async def case_events(api: httpx.AsyncClient, case_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["events"]
    return events


async def test_a_pause_resumes_by_itself_when_its_budget_runs_out_and_gives_the_time_back(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka, database_url: str
) -> None:
    async with Topic(kafka, settings.topic_case_events) as published:
        case = await a_case(api, producer, settings, "pause-budget")
        case_id = case["case_id"]
        before = datetime.fromisoformat(case["resolution_deadline"])
        answer = await api.post(
            f"/v1/cases/{case_id}/pause",
            json={"reason": "awaiting_parts", "until": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            headers=AUTH | {"Idempotency-Key": "pause-1"},
        )
        assert answer.status_code == 200, answer.text
        paused = answer.json()["paused"]
        assert paused["reason"] == "awaiting_parts"
        started = datetime.fromisoformat(paused["started_at"])
        assert datetime.fromisoformat(paused["resumes_at"]) == started + timedelta(seconds=3)  # the budget
        detail = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()
        assert {c["name"]: c["state"] for c in detail["clocks"]} == {
            "first_response": "paused",
            "resolution": "paused",
        }

        async def resumed() -> Any:
            body = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()
            return body if body["paused"] is None else None

        body = await eventually(resumed, timeout=60, what="the timer worker to resume the case")
        assert body["paused_seconds"]["awaiting_parts"] >= 3
        assert datetime.fromisoformat(body["resolution_deadline"]) >= before + timedelta(seconds=3)
        assert {c["state"] for c in body["clocks"]} == {"running"}
        [event] = [e["data"] for e in body["events"] if e["type"] == "case.resumed"]
        assert (event["cause"], event["actor"]) == ("budget_spent", None)
        assert {c["name"] for c in event["clocks"]} == {"first_response", "resolution"}

        async def both_published() -> list[str] | None:
            types = [ce(r)["ce_type"] for r in await published.poll() if r.key == case_id.encode()]
            return types if "recovery.case.resumed" in types else None

        types = await eventually(both_published, timeout=60, what="case.paused and case.resumed published")
        assert types.index("recovery.case.paused") < types.index("recovery.case.resumed")
        again = await api.post(
            f"/v1/cases/{case_id}/pause",
            json={"reason": "awaiting_parts"},
            headers=AUTH | {"Idempotency-Key": "pause-1"},
        )
        assert again.json() == answer.json()  # the first answer, nothing applied twice
        spent = await api.post(f"/v1/cases/{case_id}/pause", json={"reason": "awaiting_parts"}, headers=AUTH)
        assert spent.status_code == 409 and "pause budget" in spent.json()["detail"]
    conn = await asyncpg.connect(database_url)
    try:
        timers = await conn.fetch("SELECT sla, kind FROM sla_timers WHERE case_id = $1", case_id)
        assert {(r["sla"], r["kind"]) for r in timers} == {
            (clock, kind) for clock in ("first_response", "resolution") for kind in ("warning", "breach")
        }
        assert (await check_cases(conn)).differing == []  # replay equals the live state
    finally:
        await conn.close()


async def test_the_customers_signal_ends_a_pause_awaiting_them_but_not_one_awaiting_parts(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    case = await a_case(api, producer, settings, "pause-customer")
    case_id = case["case_id"]
    answer = await api.post(f"/v1/cases/{case_id}/pause", json={"reason": "awaiting_customer"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    at = datetime.now(UTC)
    await publish(
        producer,
        settings.topic_nps,
        "pause-customer-2",
        signal_event(SignalKind.NPS, "pause-customer", {"score": 2, "channel": "chat"}, at=at),
    )

    async def attached() -> list[dict[str, Any]] | None:
        events = await case_events(api, case_id)
        return events if any(e["type"] == "case.signal_attached" for e in events) else None

    events = await eventually(attached, what="the customer's second signal on the case")
    types = [e["type"] for e in events]
    assert types[-2:] == ["case.resumed", "case.signal_attached"]
    assert events[-2]["data"]["cause"] == "customer_signal"
    assert (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["paused"] is None


async def test_pause_and_resume_refusals_name_the_reason(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    case = await a_case(api, producer, settings, "pause-refusals")
    url = f"/v1/cases/{case['case_id']}"
    not_paused = await api.post(f"{url}/resume", headers=AUTH)
    assert (not_paused.status_code, not_paused.json()["error"]) == (409, "wrong_state")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await api.post(f"{url}/pause", json={"reason": "awaiting_parts", "until": past}, headers=AUTH)
    assert (refused.status_code, refused.json()["field"]) == (422, "until")
    for body in (
        {"reason": "awaiting_godot"},
        {"reason": "awaiting_parts", "until": "2030-01-01T10:00:00"},  # no offset: which zone?
        {"reason": "awaiting_parts", "for": "ever"},
    ):
        assert (await api.post(f"{url}/pause", json=body, headers=AUTH)).status_code == 422, body
    assert (await api.post(f"{url}/pause", json={"reason": "awaiting_third_party"}, headers=AUTH)).is_success
    twice = await api.post(f"{url}/pause", json={"reason": "awaiting_parts"}, headers=AUTH)
    assert twice.status_code == 409 and "already paused" in twice.json()["detail"]
    resumed = await api.post(f"{url}/resume", headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["paused"] is None
    assert resumed.json()["paused_seconds"]["awaiting_third_party"] >= 0
