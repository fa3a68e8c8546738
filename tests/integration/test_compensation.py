"""Compensation to billing and back, through HTTP and the real broker: limits, approval, once per request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.adapters.kafka.cloudevents import encode_binary
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import AGENT, AUTH, MANAGER, eventually, publish, signal_event

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
async def case(api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings) -> dict[str, Any]:
    customer = "comp-1"
    data = {"text": "The boiler leaked again.", "amount_at_stake": {"amount": "100.00", "currency": "EUR"}}
    await publish(
        producer, settings.topic_complaint, customer, signal_event(SignalKind.COMPLAINT, customer, data)
    )

    async def opened() -> dict[str, Any] | None:
        page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AGENT)).json()
        return page["items"][0] if page["items"] else None

    return await eventually(opened, what="the case")


async def billing_answer(
    producer: AIOKafkaProducer, settings: Settings, kind: str, data: dict[str, str]
) -> None:
    headers, body = encode_binary(
        id=f"bill-{data['request_id']}-{kind}",
        source="billing",
        type=f"recovery.compensation.{kind}",
        subject="x",
        time=datetime.now(UTC),
        data=data,
    )
    await producer.send_and_wait(settings.topic_compensation_results, body, key=b"x", headers=headers)


async def test_compensation_within_limits_goes_at_once_above_waits_for_approval_and_results_land(
    api: httpx.AsyncClient, case: dict[str, Any], settings: Settings, producer: AIOKafkaProducer, kafka: Kafka
) -> None:
    path = f"/v1/cases/{case['case_id']}/compensations"
    small = {"kind": "credit", "amount": "40.00", "currency": "EUR", "reason": "goodwill"}
    large = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "full repair cost"}
    assert (await api.post(path, json=small, headers={**AGENT, "Idempotency-Key": "c-1"})).status_code == 200
    waiting = await api.post(path, json=large, headers={**AGENT, "Idempotency-Key": "c-2"})
    [_, held] = waiting.json()["compensations"]
    assert (
        held["status"] == "awaiting_approval" and len(held["needs_approval"]) == 2
    )  # agent limit and 1.5x stake
    assert (await api.post(f"{path}/c-2/approve", headers=AGENT)).status_code == 403
    approved = await api.post(f"{path}/c-2/approve", headers=MANAGER)
    assert approved.json()["compensations"][1]["status"] == "requested"
    assert (await api.post(f"{path}/c-2/approve", headers=MANAGER)).status_code == 200  # again: nothing new
    assert (await api.post(path, json=small, headers={**AGENT, "Idempotency-Key": "c-1"})).status_code == 200

    requests = AIOKafkaConsumer(
        settings.topic_compensation_requests, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
    )
    await requests.start()
    seen: list[Any] = []
    try:

        async def both() -> bool:
            batch = await requests.getmany(timeout_ms=300)
            seen.extend(r for rs in batch.values() for r in rs)
            return len(seen) >= 2

        await eventually(both, what="two compensation requests on the billing topic")
    finally:
        await requests.stop()
    bodies = {json.loads(r.value)["request_id"]: json.loads(r.value) for r in seen}
    assert len(seen) == 2 and set(bodies) == {"c-1", "c-2"}
    assert bodies["c-1"]["approved_by"] == "ana" and bodies["c-2"]["approved_by"] == "mia"
    validator = Draft202012Validator(
        json.loads((SCHEMAS / "outgoing/compensation.requested.data.schema.json").read_text())
    )
    for body in bodies.values():
        validator.validate(body)

    await billing_answer(producer, settings, "settled", {"request_id": "c-1", "reference": "PAY-77"})
    await billing_answer(producer, settings, "failed", {"request_id": "c-2", "reason": "card expired"})

    async def landed() -> list[dict[str, Any]] | None:
        comps = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()["compensations"]
        return comps if {c["status"] for c in comps} == {"settled", "failed"} else None

    comps = await eventually(landed, what="billing's answers on the case")
    assert comps[0]["reference"] == "PAY-77" and comps[1]["failure"] == "card expired"
    metrics = (await api.get("/metrics")).text
    assert 'recovery_compensation_results_total{outcome="failed"}' in metrics


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "refund", "amount": "-5", "currency": "EUR", "reason": "x"}, "amount"),
        ({"kind": "refund", "amount": "5", "currency": "USD", "reason": "x"}, "currency"),
        ({"kind": "voucher", "amount": "5", "currency": "EUR", "reason": "x"}, "kind"),
    ],
)
async def test_a_bad_compensation_request_is_refused_naming_the_field(
    api: httpx.AsyncClient, case: dict[str, Any], body: dict[str, str], field: str
) -> None:
    answer = await api.post(f"/v1/cases/{case['case_id']}/compensations", json=body, headers=AGENT)
    assert answer.status_code == 422 and answer.json()["field"] == field
    assert (await api.get(f"/v1/cases/{case['case_id']}", headers=AGENT)).json()["compensations"] == []
