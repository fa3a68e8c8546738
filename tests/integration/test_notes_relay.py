"""An internal note is stored on the case but never published: the relay passes over it to what follows."""

from __future__ import annotations

from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import AUTH, eventually, publish, signal_event


async def test_a_note_is_never_published_and_the_events_after_it_are(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka
) -> None:
    async with Topic(kafka, settings.topic_case_events) as published:
        await publish(
            producer,
            settings.topic_nps,
            "note-relay",
            signal_event(SignalKind.NPS, "note-relay", {"score": 1}),
        )

        async def opened() -> Any:
            page = (await api.get("/v1/cases", params={"customer_id": "note-relay"}, headers=AUTH)).json()
            return page["items"][0] if page.get("items") else None

        case_id = (await eventually(opened, what="the case"))["case_id"]
        noted = await api.post(f"/v1/cases/{case_id}/notes", json={"note": "internal only"}, headers=AUTH)
        assert noted.status_code == 200
        assigned = await api.post(f"/v1/cases/{case_id}/assign", json={"owner": "ana"}, headers=AUTH)
        assert assigned.status_code == 200

        async def after_the_note() -> list[str] | None:
            types = [ce(r)["ce_type"] for r in await published.poll() if r.key == case_id.encode()]
            return types if "recovery.case.assigned" in types else None

        types = await eventually(after_the_note, timeout=60, what="the assignment after the note published")
        assert types == ["recovery.case.opened", "recovery.case.assigned"]
        assert all(b"internal only" not in r.value for r in published.records)
