"""A stored trend event maps to the message the AsyncAPI document describes: its subject and key are the tag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator

from service.adapters.kafka.contract import TREND_DATA_PATH
from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.kafka.schema_components import schema_ref
from service.adapters.postgres.case_writes import event_id
from service.app.ports import LoggedEvent
from service.domain.registry import EVENTS
from service.domain.trends import TrendDetected, trend_stream
from tools.schemas import SCHEMAS_DIR

TOPICS = OutgoingTopics(case_events="recovery.case-events.v1", sla="recovery.sla.v1")
AT = datetime(2026, 3, 29, 1, tzinfo=UTC)


def trend_message() -> tuple[dict[str, str], str]:
    event = TrendDetected(at=AT, tag="scheduling", count=6, window_days=90, case_ids=("case-1", "case-2"))
    stream = trend_stream(event.tag)
    logged = LoggedEvent(
        7, stream, 1, event_id(stream, 1), event.type, EVENTS[event.type].adapter.dump_json(event).decode(), AT
    )
    [message] = to_messages(logged, TOPICS)
    assert message.topic == TOPICS.trends
    return {name: value.decode() for name, value in message.headers}, message.key.decode()


def asyncapi_trend_message() -> dict[str, Any]:
    document = json.loads((SCHEMAS_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    [channel] = [c for c in document["channels"].values() if c["address"] == TOPICS.trends]
    [ref] = channel["messages"].values()
    message: dict[str, Any] = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
    return message


def test_the_trend_message_matches_its_asyncapi_headers_and_key() -> None:
    headers, key = trend_message()
    spec = asyncapi_trend_message()
    assert Draft202012Validator(spec["headers"]).is_valid(headers)
    assert Draft202012Validator(spec["bindings"]["kafka"]["key"]).is_valid(key)
    assert spec["payload"] == schema_ref(TREND_DATA_PATH)


def test_the_trend_subject_is_documented_as_the_tag_that_the_code_sends() -> None:
    headers, key = trend_message()
    assert headers["ce_subject"] == key == "scheduling"
    spec = asyncapi_trend_message()
    subject = spec["headers"]["properties"]["ce_subject"]["description"]
    assert "root-cause tag" in subject and not subject.startswith("The case id")
    assert "tag" in spec["bindings"]["kafka"]["key"]["description"]
