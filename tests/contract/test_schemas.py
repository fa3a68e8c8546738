"""schemas/ is generated from the wire models, and the schemas and the decoder agree on what is valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal
from service.adapters.kafka.contract import data_schema_path, event_schema_path
from service.adapters.kafka.schema_components import schema_path, schema_ref
from service.adapters.kafka.wire import TYPE_BY_KIND
from service.domain.signals import SignalKind
from tools.schemas import SCHEMAS_DIR, check_all, main, render_all

RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STRUCTURED = [("content-type", b"application/cloudevents+json")]
TOPICS = {kind: f"recovery.signals.{kind}.v1" for kind in SignalKind}
DLQ_TOPIC = "recovery.signals.dlq.v1"

VALID_DATA: dict[SignalKind, dict[str, Any]] = {
    SignalKind.COMPLAINT: {
        "customer_id": "C-1",
        "customer_tier": "platinum",
        "channel": "email",
        "job_id": "J-1",
        "amount_at_stake": {"amount": "120.50", "currency": "EUR"},
        "text": "Nobody came.",
        "category": "missed_appointment",
    },
    SignalKind.NPS: {"customer_id": "C-1", "score": 0, "comment": "Never again."},
    SignalKind.REVIEW: {"customer_id": "C-1", "rating": 1, "platform": "trustpilot", "unknown_field": [1]},
    SignalKind.CALLBACK: {"customer_id": "C-1", "original_job_id": "J-1", "days_since_visit": 0},
    SignalKind.TICKET: {"customer_id": "C-1", "ticket_id": "T-1", "priority": "high", "escalated": False},
}
INVALID_DATA: list[tuple[SignalKind, dict[str, Any]]] = [
    (SignalKind.NPS, {"customer_id": "C-1", "score": 11}),
    (SignalKind.NPS, {"customer_id": "C-1", "score": True}),
    (SignalKind.REVIEW, {"customer_id": "C-1", "rating": 0}),
    (SignalKind.COMPLAINT, {"text": "No customer."}),
    (SignalKind.COMPLAINT, {"customer_id": "", "text": "Empty customer."}),
    (
        SignalKind.COMPLAINT,
        {"customer_id": "C-1", "text": "x", "amount_at_stake": {"amount": 5, "currency": "EUR"}},
    ),
    (SignalKind.TICKET, {"customer_id": "C-1", "ticket_id": "T-1", "priority": "soon"}),
    (SignalKind.CALLBACK, {"customer_id": "C-1", "original_job_id": "J-1", "days_since_visit": -2}),
]


def load(path: str) -> Any:
    return json.loads((SCHEMAS_DIR / path).read_text(encoding="utf-8"))


def event(kind: SignalKind, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    base = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/crm",
        "type": TYPE_BY_KIND[kind],
        "time": "2024-05-01T10:00:00+02:00",
        "data": data,
    }
    return {**base, **overrides}


def schema_accepts(kind: SignalKind, document: dict[str, Any]) -> bool:
    """The file's verdict, which the schema inlined in the AsyncAPI document always shares."""
    by_file = Draft202012Validator(load(event_schema_path(kind))).is_valid(document)
    assert inlined_accepts(schema_ref(event_schema_path(kind))["$ref"], document) == by_file
    return bool(by_file)


def inlined_accepts(ref: str, instance: Any) -> bool:
    """Whether the AsyncAPI document's component accepts the instance (its refs resolve in the document)."""
    components = load("asyncapi.json")["components"]
    return bool(Draft202012Validator({"$ref": ref, "components": components}).is_valid(instance))


def decoder_accepts(kind: SignalKind, document: dict[str, Any]) -> bool:
    try:
        decode_signal(json.dumps(document).encode(), STRUCTURED, RECEIVED, kind)
    except InvalidMessage:
        return False
    return True


# --- no drift between code and schemas/ -------------------------------------------------------------------


def test_schemas_directory_matches_the_code() -> None:
    assert check_all(SCHEMAS_DIR) == [], "run: python -m tools.schemas"
    for path, text in render_all().items():
        assert (SCHEMAS_DIR / path).read_text(encoding="utf-8") == text


def test_check_flags_missing_outdated_and_stale_files(tmp_path: Path) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "signals" / "nps.data.schema.json").unlink()
    (tmp_path / "signals" / "old.data.schema.json").write_text("{}\n", encoding="utf-8")
    assert check_all(tmp_path) == [
        "outdated: asyncapi.json",
        "missing: signals/nps.data.schema.json",
        "stale: signals/old.data.schema.json",
    ]
    assert main(["--check", "--dir", str(tmp_path)]) == 1


def test_rendering_is_deterministic() -> None:
    first = render_all()
    assert first == render_all()
    for text in first.values():
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("path", sorted(render_all()))
def test_every_schema_is_a_valid_draft_2020_12_schema(path: str) -> None:
    document = load(path)
    if path == "asyncapi.json":
        return
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith(path)
    Draft202012Validator.check_schema(document)


# --- schemas and decoder agree ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SignalKind))
def test_valid_examples_pass_the_schema_and_the_decoder(kind: SignalKind) -> None:
    document = event(kind, VALID_DATA[kind], subject="C-1")
    assert schema_accepts(kind, document)
    assert decoder_accepts(kind, document)
    assert Draft202012Validator(load(data_schema_path(kind))).is_valid(VALID_DATA[kind])
    assert Draft202012Validator(load("cloudevent.schema.json")).is_valid(document)


@pytest.mark.parametrize(("kind", "data"), INVALID_DATA)
def test_invalid_data_fails_the_schema_and_the_decoder(kind: SignalKind, data: dict[str, Any]) -> None:
    document = event(kind, data)
    assert not schema_accepts(kind, document)
    assert not decoder_accepts(kind, document)
    assert not Draft202012Validator(load(data_schema_path(kind))).is_valid(data)


@pytest.mark.parametrize(
    "overrides",
    [
        {"specversion": "0.3"},
        {"time": "2024-05-01T10:00:00"},
        {"time": "yesterday"},
        {"id": ""},
        {"type": "recovery.signal.foo"},
        {"id": 7},
    ],
)
def test_invalid_attributes_fail_the_schema_and_the_decoder(overrides: dict[str, Any]) -> None:
    document = event(SignalKind.NPS, VALID_DATA[SignalKind.NPS], **overrides)
    assert not schema_accepts(SignalKind.NPS, document)
    assert not decoder_accepts(SignalKind.NPS, document)


@pytest.mark.parametrize("missing", ["specversion", "id", "source", "type", "time", "data"])
def test_missing_attributes_fail_the_schema_and_the_decoder(missing: str) -> None:
    document = event(SignalKind.NPS, VALID_DATA[SignalKind.NPS])
    del document[missing]
    assert not schema_accepts(SignalKind.NPS, document)
    assert not decoder_accepts(SignalKind.NPS, document)


# --- AsyncAPI ---------------------------------------------------------------------------------------------


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = load("asyncapi.json")
    return document


def channel_for(topic: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (name, channel) for name, channel in asyncapi()["channels"].items() if channel["address"] == topic
    ]
    assert len(matches) == 1, f"expected one channel for {topic}"
    return matches[0]


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_document_header() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Recovery Loop"
    assert document["servers"]["kafka"]["protocol"] == "kafka"


@pytest.mark.parametrize("kind", list(SignalKind))
def test_each_signal_topic_has_a_receive_channel_with_its_data_schema(kind: SignalKind) -> None:
    document = asyncapi()
    name, channel = channel_for(TOPICS[kind])
    operations = [
        op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"
    ]
    assert [op["action"] for op in operations] == ["receive"]
    messages = [resolve(document, ref["$ref"]) for ref in channel["messages"].values()]
    binary = next(m for m in messages if m["contentType"] == "application/json")
    assert binary["payload"] == schema_ref(data_schema_path(kind))
    assert schema_path(binary["payload"]["$ref"]) == data_schema_path(kind)
    assert binary["headers"]["properties"]["ce_type"]["const"] == TYPE_BY_KIND[kind]
    assert set(binary["headers"]["required"]) == {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
    }
    assert binary["bindings"]["kafka"]["key"]["type"] == "string"
    structured = next(m for m in messages if m["contentType"] == "application/cloudevents+json")
    assert structured["payload"] == schema_ref(event_schema_path(kind))
    expected = [f"#/channels/{name}/messages/{message_id}" for message_id in channel["messages"]]
    assert [ref["$ref"] for ref in operations[0]["messages"]] == expected


def test_dead_letter_topic_has_a_send_channel() -> None:
    document = asyncapi()
    name, channel = channel_for(DLQ_TOPIC)
    operations = [
        op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"
    ]
    assert [op["action"] for op in operations] == ["send"]
    (message,) = (resolve(document, ref["$ref"]) for ref in channel["messages"].values())
    assert set(message["headers"]["properties"]) >= {"dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset"}


def test_every_ref_in_asyncapi_resolves_inside_the_document() -> None:
    document = asyncapi()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/"), f"{ref} points outside the document: served from a URL it breaks"
        resolve(document, ref)


def test_each_payload_component_is_a_file_of_schemas_inlined() -> None:
    components = asyncapi()["components"]
    for message in components["messages"].values():
        ref = message["payload"].get("$ref")
        if ref is not None:
            inlined = components["schemas"][ref.rsplit("/", 1)[1]]
            assert inlined["title"] == load(schema_path(ref))["title"], ref
            assert "$defs" not in inlined and "$id" not in inlined, ref
