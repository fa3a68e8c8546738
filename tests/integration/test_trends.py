"""Root-cause trends: crossing the threshold publishes once; the counts are readable over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.bootstrap import Service, http_app
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import MANAGER, eventually, make_settings, publish, signal_event

SCHEMA = (
    Path(__file__).resolve().parents[2] / "schemas" / "outgoing" / "rootcause.trend_detected.data.schema.json"
)


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(kafka, database_url, trend_threshold=3)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    service = Service(settings)
    await service.start()
    try:
        transport = httpx.ASGITransport(app=http_app(service, settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client
    finally:
        await service.stop()


async def open_and_resolve(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, n: int
) -> None:
    customer = f"trend-{n}"
    await publish(
        producer, settings.topic_nps, customer, signal_event(SignalKind.NPS, customer, {"score": 3})
    )

    async def case_id() -> str | None:
        items = (await api.get("/v1/cases", params={"customer_id": customer}, headers=MANAGER)).json()[
            "items"
        ]
        return items[0]["case_id"] if items else None

    cid = await eventually(case_id, what=f"case of {customer}")
    body = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "buffers"}
    assert (await api.post(f"/v1/cases/{cid}/resolve", json=body, headers=MANAGER)).status_code == 200


async def test_a_root_cause_trend_is_published_once_per_crossing(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka
) -> None:
    for n in range(4):
        await open_and_resolve(api, producer, settings, n)
    trends = (await api.get("/v1/trends/root-causes", params={"window_days": 30}, headers=MANAGER)).json()
    assert trends["tags"] == [{"tag": "scheduling", "count": 4, "trend": True}]

    consumer = AIOKafkaConsumer(
        settings.topic_trends, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    try:

        async def published() -> bool:
            batch = await consumer.getmany(timeout_ms=300)
            records.extend(r for rs in batch.values() for r in rs)
            return bool(records)

        await eventually(published, what="the trend on the trends topic")
        batch = await consumer.getmany(timeout_ms=2000)  # the fourth resolution must not add another
        records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    assert len(records) == 1
    data = json.loads(records[0].value)
    Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    assert data["tag"] == "scheduling" and data["count"] == 3 and len(data["case_ids"]) == 3
    assert dict(records[0].headers)["ce_type"] == b"recovery.rootcause.trend_detected"
