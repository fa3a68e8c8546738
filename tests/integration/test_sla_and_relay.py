"""SLA timers fire once per deadline and the relay publishes the event log, through the real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import eventually, make_settings, publish, relay_caught_up, signal_event

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "outgoing"
SECONDS = {s: "PT4S" for s in ("minor", "moderate", "major", "critical")}
FIRST_RESPONSE = {c: "PT2S" for c in ("phone", "email", "chat", "social", "web", "in_person")}


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(
        kafka,
        database_url,
        sla_resolution=SECONDS,
        sla_first_response=FIRST_RESPONSE,
        sla_warning_fraction=0.5,
    )


class Topic:
    """Everything published on a topic since the start, read as a plain consumer would."""

    def __init__(self, kafka: Kafka, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
        )
        self.records: list = []  # type: ignore[type-arg]

    async def __aenter__(self) -> Topic:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def poll(self) -> list:  # type: ignore[type-arg]
        batch = await self.consumer.getmany(timeout_ms=200)
        self.records.extend(r for rs in batch.values() for r in rs)
        return self.records


def ce(record) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v.decode() for k, v in record.headers}


async def test_a_case_gets_each_warning_and_breach_once_on_the_sla_topic(
    service: Service, settings: Settings, producer: AIOKafkaProducer, kafka: Kafka, database_url: str
) -> None:
    async with Topic(kafka, settings.topic_sla) as sla:
        now = datetime.now(UTC)
        await publish(
            producer,
            settings.topic_nps,
            "sla-1",
            signal_event(SignalKind.NPS, "sla-1", {"score": 1, "channel": "chat"}, at=now),
        )

        async def four() -> list | None:  # type: ignore[type-arg]
            records = await sla.poll()
            return records if len(records) >= 4 else None

        await eventually(four, timeout=60, what="two warnings and two breaches")
        conn = await asyncpg.connect(database_url)
        try:
            await eventually(lambda: relay_caught_up(conn), what="the relay to reach the head of the log")
            assert await conn.fetchval("SELECT count(*) FROM sla_timers WHERE fired_at IS NULL") == 0
        finally:
            await conn.close()
        await sla.poll()
    kinds = sorted((ce(r)["ce_type"], json.loads(r.value)["sla"]) for r in sla.records)
    assert kinds == [
        ("recovery.sla.breached", "first_response"),
        ("recovery.sla.breached", "resolution"),
        ("recovery.sla.warning", "first_response"),
        ("recovery.sla.warning", "resolution"),
    ]
    assert len({ce(r)["ce_id"] for r in sla.records}) == 4
    validator = Draft202012Validator(json.loads((SCHEMAS / "sla.data.schema.json").read_text()))
    for record in sla.records:
        data = json.loads(record.value)
        validator.validate(data)
        assert record.key.decode() == data["case_id"] == ce(record)["ce_subject"]
        assert data["customer_id"] == "sla-1" and data["severity"] == "major"
        fired = datetime.fromisoformat(data["fired_at"])
        assert fired >= datetime.fromisoformat(data["deadline"]) - timedelta(seconds=2)


async def test_case_events_are_published_in_order_with_their_stored_ids(
    service: Service, settings: Settings, producer: AIOKafkaProducer, kafka: Kafka, database_url: str
) -> None:
    async with Topic(kafka, settings.topic_case_events) as events:
        at = datetime.now(UTC)
        await publish(
            producer,
            settings.topic_review,
            "rel-1",
            signal_event(SignalKind.REVIEW, "rel-1", {"rating": 3}, at=at),
        )

        async def opened() -> list | None:  # type: ignore[type-arg]
            return await events.poll() or None

        await eventually(opened, what="case.opened on the case-events topic")
        await publish(
            producer,
            settings.topic_nps,
            "rel-1",
            signal_event(SignalKind.NPS, "rel-1", {"score": 0}, at=at + timedelta(seconds=1)),
        )

        async def escalated() -> bool:
            return any(ce(r)["ce_type"] == "recovery.case.escalated" for r in await events.poll())

        await eventually(escalated, what="case.escalated on the case-events topic")
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetch("SELECT event_id::text, type FROM events ORDER BY position")
    finally:
        await conn.close()
    published = [(ce(r)["ce_id"], ce(r)["ce_type"]) for r in events.records]
    assert published == [(row["event_id"], "recovery." + row["type"]) for row in stored]
    for record in events.records:
        name = ce(record)["ce_type"].removeprefix("recovery.")
        schema = json.loads((SCHEMAS / f"{name}.data.schema.json").read_text())
        Draft202012Validator(schema).validate(json.loads(record.value))


async def test_escalation_moves_the_breach_to_the_tighter_deadline(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer
) -> None:
    settings = make_settings(
        kafka, database_url, sla_resolution={"minor": "PT1H", "critical": "PT3S"}, sla_warning_fraction=0.5
    )
    service = Service(settings)
    await service.start()
    try:
        async with Topic(kafka, settings.topic_sla) as sla:
            at = datetime.now(UTC)
            await publish(
                producer,
                settings.topic_nps,
                "esc-1",
                signal_event(SignalKind.NPS, "esc-1", {"score": 6}, at=at),
            )
            await eventually(lambda: _open_case(database_url, "esc-1"), what="the minor case")
            await publish(
                producer,
                settings.topic_complaint,
                "esc-1",
                signal_event(SignalKind.COMPLAINT, "esc-1", {"text": "Water flooded the kitchen."}, at=at),
            )

            async def resolution_breach() -> list | None:  # type: ignore[type-arg]
                found = [
                    r
                    for r in await sla.poll()
                    if ce(r)["ce_type"] == "recovery.sla.breached"
                    and json.loads(r.value)["sla"] == "resolution"
                ]
                return found or None

            [breach] = await eventually(resolution_breach, timeout=60, what="the resolution breach")
        data = json.loads(breach.value)
        assert data["severity"] == "critical"
        assert datetime.fromisoformat(data["deadline"]) <= at + timedelta(seconds=4)
    finally:
        await service.stop()


async def _open_case(database_url: str, customer: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM cases WHERE customer_id = $1", customer))
    finally:
        await conn.close()


async def test_the_follow_up_falls_due_after_resolution_and_is_published(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer
) -> None:
    import httpx

    from service.bootstrap import http_app
    from tests.support import MANAGER

    settings = make_settings(kafka, database_url, followup_after="PT2S")
    service = Service(settings)
    await service.start()
    try:
        transport = httpx.ASGITransport(app=http_app(service, settings))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://api") as api,
            Topic(kafka, settings.topic_case_events) as events,
        ):
            await publish(
                producer, settings.topic_nps, "fu-1", signal_event(SignalKind.NPS, "fu-1", {"score": 4})
            )

            async def case_id() -> str | None:
                items = (await api.get("/v1/cases", params={"customer_id": "fu-1"}, headers=MANAGER)).json()[
                    "items"
                ]
                return items[0]["case_id"] if items else None

            cid = await eventually(case_id, what="the case")
            body = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "x"}
            assert (await api.post(f"/v1/cases/{cid}/resolve", json=body, headers=MANAGER)).status_code == 200

            async def due() -> list | None:  # type: ignore[type-arg]
                return [
                    r for r in await events.poll() if ce(r)["ce_type"] == "recovery.case.followup_due"
                ] or None

            [record] = await eventually(due, timeout=60, what="case.followup_due on the case-events topic")
        assert json.loads(record.value)["case_id"] == cid
    finally:
        await service.stop()
