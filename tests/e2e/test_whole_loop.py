"""One case through the whole loop, as its users see it: HTTP to the service process, Kafka in and out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.adapters.kafka.cloudevents import encode_binary
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import (
    AGENT,
    AUTH,
    MANAGER,
    ServiceProcess,
    eventually,
    make_settings,
    publish,
    recovery_cli,
    relay_caught_up,
    signal_event,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema_for(ce_type: str) -> Draft202012Validator:
    name = ce_type.removeprefix("recovery.")
    path = {
        "sla.warning": "outgoing/sla.data.schema.json",
        "sla.breached": "outgoing/sla.data.schema.json",
        "compensation.requested": "outgoing/compensation.requested.data.schema.json",
    }.get(name, f"outgoing/{name}.data.schema.json")
    return Draft202012Validator(json.loads((SCHEMAS / path).read_text()))


async def drain(kafka: Kafka, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    return records


def ce(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


async def test_one_case_from_signal_to_closed_through_http_and_kafka(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = make_settings(kafka, database_url, followup_after="PT1S")
    service = ServiceProcess(settings, tmp_path, "service").start()
    try:
        await eventually(service.url_ready, timeout=60, what="the service")
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as api:
            await loop(api, settings, producer, db)
        await eventually(lambda: relay_caught_up(db), what="the relay to publish everything")
    finally:
        service.stop()

    case_events = await drain(kafka, settings.topic_case_events)
    types = [ce(r)["ce_type"] for r in case_events]
    assert types == [
        "recovery.case.opened",
        "recovery.case.step_added",
        "recovery.case.step_recorded",
        "recovery.case.compensation_requested",
        "recovery.case.compensation_approved",
        "recovery.case.compensation_settled",
        "recovery.case.resolved",
        "recovery.case.followup_due",
        "recovery.case.follow_up_recorded",
        "recovery.case.reopened",
        "recovery.case.resolved",
        "recovery.case.followup_due",
        "recovery.case.follow_up_recorded",
        "recovery.case.closed",
    ]
    [billing] = await drain(kafka, settings.topic_compensation_requests)
    for record in [*case_events, billing, *await drain(kafka, settings.topic_sla)]:
        schema_for(ce(record)["ce_type"]).validate(json.loads(record.value))
    assert json.loads(billing.value)["approved_by"] == "tester"

    rebuilt = recovery_cli(database_url, "projections", "rebuild", "--check")
    assert rebuilt.returncode == 0 and " 0 differ" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr


async def loop(
    api: httpx.AsyncClient, settings: Any, producer: AIOKafkaProducer, db: asyncpg.Connection
) -> None:
    data = {"text": "The heater broke again.", "amount_at_stake": {"amount": "100.00", "currency": "EUR"}}
    await publish(
        producer, settings.topic_complaint, "loop-1", signal_event(SignalKind.COMPLAINT, "loop-1", data)
    )

    async def opened() -> str | None:
        items = (await api.get("/v1/cases", params={"customer_id": "loop-1"}, headers=AGENT)).json()["items"]
        return items[0]["case_id"] if items else None

    path = f"/v1/cases/{await eventually(opened, what='the case')}"
    assert (await api.post(f"{path}/steps", json={"kind": "call_customer"}, headers=AGENT)).status_code == 200
    recorded = await api.post(
        f"{path}/steps/step-1/outcome", json={"outcome": "completed", "notes": "ok"}, headers=AGENT
    )
    assert recorded.json()["acknowledged_at"] is not None
    comp = {"kind": "refund", "amount": "300.00", "currency": "EUR", "reason": "repair cost"}
    held = await api.post(
        f"{path}/compensations", json=comp, headers={**AGENT, "Idempotency-Key": "loop-refund"}
    )
    assert held.json()["compensations"][0]["status"] == "awaiting_approval"
    request_id = held.json()["compensations"][0]["request_id"]  # the service's own, unique across cases
    assert (await api.post(f"{path}/compensations/{request_id}/approve", headers=AUTH)).status_code == 200

    headers, body = encode_binary(
        id="bill-1",
        source="billing",
        type="recovery.compensation.settled",
        subject="loop-1",
        time=datetime.now(UTC),
        data={"request_id": request_id, "reference": "PAY-9"},
    )
    await producer.send_and_wait(settings.topic_compensation_results, body, key=b"loop-1", headers=headers)

    async def settled() -> bool:
        case = (await api.get(path, headers=AGENT)).json()
        return bool(case["compensations"][0]["status"] == "settled")

    await eventually(settled, what="billing's settlement on the case")
    no_cause = {"resolution_type": "full_refund", "prevention_action": "check seals"}
    refused = await api.post(f"{path}/resolve", json=no_cause, headers=MANAGER)
    assert refused.status_code == 422 and refused.json()["field"] == "root_cause"
    full = {**no_cause, "root_cause": "parts_quality"}
    for satisfied in (False, True):
        assert (await api.post(f"{path}/resolve", json=full, headers=MANAGER)).status_code == 200
        await eventually(lambda: _follow_up_due(db, path.rsplit("/", 1)[1]), what="the follow-up to fall due")
        after = await api.post(f"{path}/follow-up", json={"satisfied": satisfied}, headers=AGENT)
        assert after.json()["status"] == ("closed" if satisfied else "open")


async def _follow_up_due(db: asyncpg.Connection, case_id: str) -> bool:
    state = json.loads(await db.fetchval("SELECT state FROM cases WHERE case_id = $1", case_id))
    due = await db.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'case.followup_due'", case_id
    )
    resolutions = await db.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'case.resolved'", case_id
    )
    return bool(state["status"] == "resolved" and due == resolutions)
