"""The relay reads the log through the registry: an event stored at a schema version this build cannot read
(a newer release wrote it) is parked with a reason naming the version, and holds back only its own case."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from service.bootstrap import Service
from service.config import Settings
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import eventually


async def acknowledged(
    db: asyncpg.Connection, case_id: str, version: int, schema_version: int
) -> tuple[int, str]:
    """A case.acknowledged row as a writer of that schema version stores it."""
    event_id = str(uuid.uuid4())
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = json.dumps({"type": "case.acknowledged", "case_id": case_id, "at": at, "actor": "ana"})
    position = await db.fetchval(
        "INSERT INTO events (stream_id, version, event_id, type, data, schema_version)"
        " VALUES ($1, $2, $3, 'case.acknowledged', $4, $5) RETURNING position",
        case_id,
        version,
        event_id,
        data,
        schema_version,
    )
    return int(position), event_id


async def test_an_event_of_a_newer_schema_version_is_parked_and_holds_back_only_its_case(
    service: Service, settings: Settings, kafka: Kafka, db: asyncpg.Connection
) -> None:
    async with Topic(kafka, settings.topic_case_events) as events:
        _, a1 = await acknowledged(db, "case-a", 1, 1)
        newer, _ = await acknowledged(db, "case-a", 2, 7)
        _, b1 = await acknowledged(db, "case-b", 1, 1)
        behind, _ = await acknowledged(db, "case-a", 3, 1)
        _, b2 = await acknowledged(db, "case-b", 2, 1)

        async def published() -> set[str] | None:
            ids = {ce(r)["ce_id"] for r in await events.poll()}
            return ids if b2 in ids else None

        # two cases, so two partitions: no order between them
        assert await eventually(published, what="case-b published around case-a's newer event") == {
            a1,
            b1,
            b2,
        }

        async def parked() -> dict[int, asyncpg.Record] | None:
            rows = await db.fetch("SELECT position, reason, behind FROM parked_events")
            return {r["position"]: r for r in rows} if len(rows) == 2 else None

        rows = await eventually(parked, what="the newer event and the one behind it parked")
        assert rows[newer]["reason"] == (
            f"UnpublishableEvent: cannot publish the stored event at position {newer} (type 'case.acknowledged'):"
            " case.acknowledged is stored at schema version 7; this build reads 1 to 1"
        )
        assert rows[behind]["reason"] == f"behind parked event {newer}"
