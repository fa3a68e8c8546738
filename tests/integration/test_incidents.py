"""An outage through Kafka: twenty customers of one service and region complain within minutes, the default
rule declares one incident (its row and its stream), and recovery.incidents.v1 carries it once."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import AGENT, MANAGER, eventually, publish, signal_event

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "outgoing" / "incident.data.schema.json"
WHERE = {"service": "broadband", "region": "north-east"}


async def complain(producer: AIOKafkaProducer, settings: Settings, customer: str, **where: str) -> None:
    data = {"text": "no internet since this morning", **where}
    await publish(producer, settings.topic_complaint, customer, signal_event(SignalKind.COMPLAINT, customer, data))


async def test_an_outage_of_twenty_customers_declares_one_incident_links_their_cases_and_is_published_once(
    service: Service, settings: Settings, producer: AIOKafkaProducer, kafka: Kafka, database_url: str
) -> None:
    for k in range(19):
        await complain(producer, settings, f"outage-{k}", **WHERE)
    for k in range(5):
        await complain(producer, settings, f"elsewhere-{k}", service="broadband", region="south")
    conn = await asyncpg.connect(database_url)
    try:

        async def logged(n: int) -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM signal_log WHERE service = 'broadband'") >= n)

        await eventually(lambda: logged(24), what="the first 24 signals applied")
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0  # 19 customers: under the floor
        for k in range(19, 25):
            await complain(producer, settings, f"outage-{k}", **WHERE)
        await complain(producer, settings, "outage-3", **WHERE)  # a customer again: no second incident

        async def declared() -> list[asyncpg.Record]:
            rows = await conn.fetch("SELECT incident_id, status, scope_key FROM incidents")
            applied = await conn.fetchval("SELECT count(*) FROM signal_log WHERE service = 'broadband'")
            return rows if applied >= 31 else []

        [row] = await eventually(declared, what="the incident declared and every signal applied")
        assert row["status"] == "declared" and json.loads(row["scope_key"]) == [
            "service-region",
            [["service", "broadband"], ["region", "north-east"]],
        ]
        stream = await conn.fetch(
            "SELECT type, version FROM events WHERE stream_id = $1", f"incident/{row['incident_id']}"
        )
        assert [(r["type"], r["version"]) for r in stream] == [("incident.declared", 1)]
        linked = await conn.fetch("SELECT customer_id, state->>'incident_id' AS incident FROM cases")
        by_customer = {r["customer_id"]: r["incident"] for r in linked}
        assert {by_customer[f"outage-{k}"] for k in range(25)} == {row["incident_id"]}  # the first 19 too
        assert {by_customer[f"elsewhere-{k}"] for k in range(5)} == {None}
    finally:
        await conn.close()

    consumer = AIOKafkaConsumer(settings.topic_incidents, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    try:

        async def published() -> bool:
            batch = await consumer.getmany(timeout_ms=300)
            records.extend(r for rs in batch.values() for r in rs)
            return bool(records)

        await eventually(published, what="the incident on recovery.incidents.v1")
        records.extend(r for rs in (await consumer.getmany(timeout_ms=1000)).values() for r in rs)
    finally:
        await consumer.stop()
    [record] = records
    data = json.loads(record.value)
    Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    assert record.key.decode() == data["incident_id"] == row["incident_id"]
    assert dict(record.headers)["ce_type"] == b"recovery.incident.declared"
    assert data["scope"] == WHERE and data["detection"]["rule"] == "service-region"
    assert data["detection"]["customers"] >= 20 and data["detection"]["baseline"] is None


async def test_a_manager_declares_an_incident_by_hand_its_cases_link_and_it_is_dismissed(
    api: httpx.AsyncClient, settings: Settings, producer: AIOKafkaProducer
) -> None:
    scope = {"service": "boiler-servicing", "region": "south"}
    refused = await api.post("/v1/incidents", json={"scope": scope}, headers=AGENT)
    assert refused.status_code == 403
    declared = await api.post("/v1/incidents", json={"scope": scope}, headers=MANAGER)
    assert declared.status_code == 201, declared.text
    incident = declared.json()["incident_id"]
    assert (await api.post("/v1/incidents", json={"scope": scope}, headers=MANAGER)).status_code == 409
    await complain(producer, settings, "boiler-1", **scope)
    await complain(producer, settings, "boiler-2", service="boiler-servicing", region="north")

    async def linked() -> dict[str, int] | None:
        detail = (await api.get(f"/v1/incidents/{incident}", headers=AGENT)).json()
        cases = (await api.get("/v1/cases", params={"customer_id": "boiler-2"}, headers=AGENT)).json()["items"]
        return detail["cases"] if detail["cases"] and cases else None

    assert await eventually(linked, what="the case in scope linked") == {"open": 1}
    [other] = (await api.get("/v1/cases", params={"customer_id": "boiler-2"}, headers=AGENT)).json()["items"]
    assert other["incident_id"] is None
    dismissed = await api.post(f"/v1/incidents/{incident}/dismiss", json={"reason": "one boiler"}, headers=MANAGER)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    again = await api.post(f"/v1/incidents/{incident}/dismiss", json={"reason": "again"}, headers=MANAGER)
    assert again.status_code == 409
    listed = (await api.get("/v1/incidents", params={"status": "dismissed"}, headers=AGENT)).json()["items"]
    assert [i["incident_id"] for i in listed] == [incident]
