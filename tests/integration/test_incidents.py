"""An outage through Kafka: twenty customers of one service and region complain within minutes, the default
rule declares one incident (its row and its stream), and recovery.incidents.v1 carries it once."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import eventually, publish, signal_event

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
