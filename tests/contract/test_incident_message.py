"""A stored incident event maps to the message the AsyncAPI document describes: key and subject are the incident
id, the data validates against schemas/outgoing/incident.data.schema.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.postgres.case_writes import event_id
from service.app.ports import LoggedEvent
from service.domain.incidents import (
    DEFAULT_SURGE,
    IncidentDeclared,
    IncidentEvent,
    IncidentProposed,
    SurgeCount,
    detect,
    incident_stream,
)
from service.domain.registry import EVENTS
from tools.schemas import SCHEMAS_DIR

TOPICS = OutgoingTopics(case_events="recovery.case-events.v1", sla="recovery.sla.v1")
AT = datetime(2026, 3, 29, 1, tzinfo=UTC)
SCOPE = (("service", "broadband"), ("region", "north-east"))


def detected(proposes: bool) -> IncidentEvent:
    rule = DEFAULT_SURGE.model_copy(update={"on_crossing": "propose" if proposes else "declare"})
    event = detect(SurgeCount(rule, SCOPE, 25, 2.5, AT - timedelta(seconds=3)), AT)
    assert event is not None
    return event


def message_of(event: IncidentEvent) -> tuple[dict[str, str], str, Any]:
    stream = incident_stream(event.incident_id)
    data = EVENTS[event.type].adapter.dump_json(event).decode()
    [message] = to_messages(LoggedEvent(9, stream, 1, event_id(stream, 1), event.type, data, AT), TOPICS)
    assert message.topic == TOPICS.incidents
    return {n: v.decode() for n, v in message.headers}, message.key.decode(), json.loads(message.value)


def spec_of(type_: str) -> dict[str, Any]:
    document = json.loads((SCHEMAS_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    [channel] = [c for c in document["channels"].values() if c["address"] == TOPICS.incidents]
    for ref in channel["messages"].values():
        message: dict[str, Any] = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        if message["title"].startswith(type_):
            return message
    raise AssertionError(f"no message for {type_}")


@pytest.mark.parametrize("proposes", [True, False])
def test_an_incident_message_matches_its_asyncapi_message_and_schema(proposes: bool) -> None:
    event = detected(proposes)
    assert isinstance(event, IncidentProposed if proposes else IncidentDeclared)
    headers, key, data = message_of(event)
    spec = spec_of(f"recovery.{event.type}")
    assert headers["ce_type"] == f"recovery.{event.type}" and headers["ce_subject"] == key == event.incident_id
    assert Draft202012Validator(spec["headers"]).is_valid(headers)
    assert Draft202012Validator(spec["bindings"]["kafka"]["key"]).is_valid(key)
    schema = json.loads((SCHEMAS_DIR / "outgoing" / "incident.data.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(data)
    assert data["scope"] == dict(SCOPE)
    why = data["detection"]
    assert (why["rule"], why["customers"], why["baseline"], why["min_customers"]) == ("service-region", 25, 2.5, 20)
