"""A named clock from the SLA policy file, end to end: it starts when the case opens, warns and breaches once on
the SLA topic with its name, and the case's events and API say which calendar and policy version set it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from jsonschema import Draft202012Validator
from prometheus_client import REGISTRY

from service.bootstrap import Service, http_app
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import SCHEMAS, Topic, ce
from tests.support import AUTH, MANAGER, eventually, make_settings, publish, relay_caught_up, signal_event

REGULATORY = "regulatory_final_response"
POLICY = {
    "version": "reg-2026-12",
    "clocks": [
        {
            "clock": REGULATORY,
            "when": {"kind": ["nps"]},
            "calendar": "24x7",
            "duration": "PT3S",
            "pausable": False,
        },
        {"clock": "other_named_clock", "when": {"kind": ["review"]}, "calendar": "24x7", "duration": "PT1S"},
    ],
}


@pytest.fixture
def settings(kafka: Kafka, database_url: str, tmp_path: Path) -> Settings:
    path = tmp_path / "sla-policy.json"
    path.write_text(json.dumps(POLICY), encoding="utf-8")
    long = {s: "PT1H" for s in ("minor", "moderate", "major", "critical")}
    return make_settings(
        kafka,
        database_url,
        sla_resolution=long,
        sla_first_response={c: "PT1H" for c in ("phone", "email", "chat", "social", "web", "in_person")},
        sla_warning_fraction=0.5,
        sla_policy_file=path,
    )


async def test_a_named_clock_warns_and_breaches_once_on_the_sla_topic(
    service: Service, settings: Settings, producer: AIOKafkaProducer, kafka: Kafka, database_url: str
) -> None:
    async with Topic(kafka, settings.topic_sla) as sla, Topic(kafka, settings.topic_case_events) as cases:
        at = datetime.now(UTC)
        await publish(
            producer,
            settings.topic_nps,
            "reg-1",
            signal_event(SignalKind.NPS, "reg-1", {"score": 1, "channel": "chat"}, at=at),
        )

        async def warned_and_breached() -> list | None:  # type: ignore[type-arg]
            records = await sla.poll()
            return records if len(records) >= 2 else None

        await eventually(warned_and_breached, timeout=60, what="the named clock's warning and breach")
        conn = await asyncpg.connect(database_url)
        try:
            await eventually(lambda: relay_caught_up(conn), what="the relay to reach the head of the log")
            unfired = await conn.fetch("SELECT sla FROM sla_timers WHERE fired_at IS NULL")
            assert {r["sla"] for r in unfired} == {"first_response", "resolution"}  # an hour away
        finally:
            await conn.close()
        await sla.poll()
        await cases.poll()
    fired = sorted((ce(r)["ce_type"], json.loads(r.value)["sla"]) for r in sla.records)
    assert fired == [("recovery.sla.breached", REGULATORY), ("recovery.sla.warning", REGULATORY)]
    assert len({ce(r)["ce_id"] for r in sla.records}) == 2
    validator = Draft202012Validator(json.loads((SCHEMAS / "sla.data.schema.json").read_text()))
    for record in sla.records:
        data = json.loads(record.value)
        validator.validate(data)
        assert abs(datetime.fromisoformat(data["deadline"]) - (at + timedelta(seconds=3))) < timedelta(
            seconds=1
        )
    [opened] = [json.loads(r.value) for r in cases.records if ce(r)["ce_type"] == "recovery.case.opened"]
    clocks = {c["name"]: c for c in opened["clocks"]}
    assert set(clocks) == {"first_response", "resolution", REGULATORY}  # the review rule selects nothing here
    assert (clocks[REGULATORY]["policy_version"], clocks[REGULATORY]["pausable"]) == ("reg-2026-12", False)


async def test_the_case_api_explains_each_clock(
    service: Service, settings: Settings, producer: AIOKafkaProducer
) -> None:
    at = datetime.now(UTC)
    await publish(
        producer,
        settings.topic_nps,
        "reg-2",
        signal_event(SignalKind.NPS, "reg-2", {"score": 1, "channel": "chat"}, at=at),
    )
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:

        async def the_case() -> dict | None:  # type: ignore[type-arg]
            found = (await api.get("/v1/cases", params={"customer_id": "reg-2"}, headers=AUTH)).json()
            return found["items"][0] if found.get("items") else None

        case = await eventually(the_case, what="the case")

        async def breached() -> dict | None:  # type: ignore[type-arg]
            body = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
            states = {c["name"]: c["state"] for c in body["clocks"]}
            return body if states.get(REGULATORY) == "breached" else None

        body = await eventually(breached, timeout=60, what="the regulatory clock breached")
    clocks = {c["name"]: c for c in body["clocks"]}
    regulatory = clocks[REGULATORY]
    assert regulatory["calendar"] == {"name": "24x7", "zone": "UTC"}
    assert regulatory["policy_version"] == "reg-2026-12"
    assert regulatory["business_seconds_left"] == 0
    assert regulatory["business_seconds_elapsed"] >= 3
    assert "3s of open time in calendar 24x7" in regulatory["explanation"]
    resolution = clocks["resolution"]
    assert resolution["state"] == "running"
    assert 0 < resolution["business_seconds_left"] <= 3600


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_resolution_counts_each_clock_met_or_breached_and_its_time_to_resolve(
    service: Service, settings: Settings, producer: AIOKafkaProducer
) -> None:
    await publish(
        producer,
        settings.topic_nps,
        "reg-3",
        signal_event(SignalKind.NPS, "reg-3", {"score": 1, "channel": "chat"}, at=datetime.now(UTC)),
    )
    resolved = {"sla": "resolution", "outcome": "met"}
    breached = {"sla": REGULATORY, "outcome": "breached"}
    business = {"severity": "major", "time": "business"}
    before = (
        sample("recovery_sla_outcomes_total", resolved),
        sample("recovery_sla_outcomes_total", breached),
        sample("recovery_time_to_resolution_seconds_count", business),
    )
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:

        async def regulatory_breached() -> dict | None:  # type: ignore[type-arg]
            found = (await api.get("/v1/cases", params={"customer_id": "reg-3"}, headers=AUTH)).json()
            if not found.get("items"):
                return None
            body = (await api.get(f"/v1/cases/{found['items'][0]['case_id']}", headers=AUTH)).json()
            states = {c["name"]: c["state"] for c in body["clocks"]}
            return body if states.get(REGULATORY) == "breached" else None

        case = await eventually(regulatory_breached, timeout=60, what="the regulatory clock breached")
        answer = await api.post(
            f"/v1/cases/{case['case_id']}/resolve",
            json={
                "resolution_type": "apology_only",
                "root_cause": "scheduling",
                "prevention_action": "buffer",
            },
            headers=MANAGER,
        )
        assert answer.status_code == 200
    after = (
        sample("recovery_sla_outcomes_total", resolved),
        sample("recovery_sla_outcomes_total", breached),
        sample("recovery_time_to_resolution_seconds_count", business),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
