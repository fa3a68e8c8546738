"""The official CloudEvents SDK (2.2.0, pinned) and our codec agree on both Kafka content modes, no broker needed.

SDK to ours: signals of every kind and billing's answers made by the SDK decode. Ours to the SDK: what we encode
and every record the relay publishes (case events, SLA events, compensation requests, trends) parse with the
SDK's Kafka binding to the same attributes, data and key. The documented billing-results channel is what
decode_result actually requires.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.v1.event import CloudEvent
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from examples.billing_service import Billing, answer_record
from examples.publisher import KINDS, STRUCTURED, signal_data, signal_record
from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal, encode_binary, encode_structured
from service.adapters.kafka.outgoing import OutgoingMessage, to_messages
from service.adapters.kafka.results import decode_result
from service.adapters.kafka.schema_components import schema_path
from service.adapters.postgres.case_writes import event_id
from service.app.ports import LoggedEvent
from service.domain.registry import EVENTS
from service.domain.signals import SignalKind
from service.domain.trends import TrendDetected, trend_stream
from tests.contract.test_outgoing import TOPICS, logged, sla_events, worked
from tools.schemas import SCHEMAS_DIR

AT = datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
RECEIVED = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)
MODES = ("binary", "structured")
ENCODERS = {"binary": kafka.to_binary_event, "structured": kafka.to_structured_event}


def sdk_signal(kind: str, *, content_type: bool = True, customer: str = "cust-7") -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": f"sig-{kind}",
        "source": "/crm",
        "type": f"recovery.signal.{kind}",
        "subject": customer,
        "time": AT,
    }
    if content_type:
        attributes["datacontenttype"] = "application/json"
    return CloudEvent(attributes=attributes, data=signal_data(kind, customer))


def record_of(message: kafka.KafkaMessage) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers as a Kafka client hands them over."""
    return message.value, list(message.headers.items())


def sdk_read(headers: list[tuple[str, bytes]], value: bytes, key: bytes | None = None) -> CloudEvent:
    event = kafka.from_kafka_event(kafka.KafkaMessage(headers=dict(headers), key=key, value=value))
    assert isinstance(event, CloudEvent)
    return event


# --- SDK to ours ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_signal_of_every_kind_made_by_the_sdk_in_either_mode_decodes_to_its_attributes_and_data(
    kind: str, mode: str
) -> None:
    value, headers = record_of(ENCODERS[mode](sdk_signal(kind)))
    for expected in (SignalKind(kind), None):  # the hot path and the careful path
        signal = decode_signal(value, headers, RECEIVED, expected_kind=expected)
        assert (signal.source, signal.id, signal.kind) == ("/crm", f"sig-{kind}", SignalKind(kind))
        assert signal.customer_id == "cust-7" and signal.occurred_at == AT
        assert signal.job_id == "job-1017" and signal.channel == "email"


@pytest.mark.parametrize("mode", MODES)
def test_an_sdk_signal_without_a_datacontenttype_is_read_as_json(mode: str) -> None:
    message = ENCODERS[mode](sdk_signal("nps", content_type=False))
    assert "content-type" not in message.headers or mode == "structured"
    signal = decode_signal(*record_of(message), RECEIVED, expected_kind=SignalKind.NPS)
    assert signal.text == "Third visit for the same leak."


def test_the_sdk_signal_whose_subject_is_another_customer_is_refused_as_ours_would_be() -> None:
    event = sdk_signal("review")
    wrong = CloudEvent({**event.get_attributes(), "subject": "someone-else"}, event.get_data())
    with pytest.raises(InvalidMessage, match="subject does not match"):
        decode_signal(*record_of(kafka.to_binary_event(wrong)), RECEIVED)


@pytest.mark.parametrize("kind", KINDS)
def test_the_example_publishers_records_decode_and_are_keyed_by_the_customer(kind: str) -> None:
    message = signal_record(kind, "cust-9")
    assert message.key == "cust-9"
    assert ("ce_id" not in message.headers) == (kind in STRUCTURED)
    signal = decode_signal(*record_of(message), RECEIVED, expected_kind=SignalKind(kind))
    assert signal.customer_id == "cust-9" and signal.source == "/examples/publisher"


# --- ours to the SDK, and both agree on the encodings ------------------------------------------------------


def ours(mode: str) -> tuple[list[tuple[str, bytes]], bytes]:
    encode = encode_structured if mode == "structured" else encode_binary
    data = signal_data("ticket", "cust-7")
    return encode(
        id="sig-ticket", source="/crm", type="recovery.signal.ticket", subject="cust-7", time=AT, data=data
    )


@pytest.mark.parametrize("mode", MODES)
def test_what_we_encode_parses_with_the_sdk_to_the_same_attributes_and_data(mode: str) -> None:
    headers, value = ours(mode)
    event = sdk_read(headers, value, b"cust-7")
    assert event.get_attributes() == {**sdk_signal("ticket").get_attributes(), "partitionkey": "cust-7"}
    assert event.get_data() == signal_data("ticket", "cust-7")


@pytest.mark.parametrize("mode", MODES)
def test_ours_and_the_sdks_encoding_of_one_event_are_the_same_but_for_json_whitespace(mode: str) -> None:
    headers, value = ours(mode)
    theirs = ENCODERS[mode](sdk_signal("ticket"))
    assert dict(headers) == theirs.headers  # binary: every ce_* header and content-type, byte for byte
    assert json.loads(value) == json.loads(theirs.value)


# --- every record the relay publishes parses with the SDK ---------------------------------------------------


def published() -> list[OutgoingMessage]:
    trend = TrendDetected(at=AT, tag="scheduling", count=6, window_days=90, case_ids=("case-1", "case-2"))
    stream = trend_stream(trend.tag)
    trend_row = LoggedEvent(
        7, stream, 1, event_id(stream, 1), trend.type, EVENTS[trend.type].adapter.dump_json(trend).decode(), AT
    )
    events = [*worked(), *sla_events()]
    return [m for e in events for m in to_messages(logged(e), TOPICS)] + to_messages(trend_row, TOPICS)


def test_the_published_records_cover_every_outgoing_topic() -> None:
    topics = {m.topic for m in published()}
    assert topics == {TOPICS.case_events, TOPICS.sla, TOPICS.compensation, TOPICS.trends}


@pytest.mark.parametrize(
    "message", published(), ids=lambda m: f"{m.topic}:{dict(m.headers)['ce_type'].decode()}"
)
def test_every_record_we_publish_parses_with_the_sdk_to_its_attributes_data_and_key(
    message: OutgoingMessage,
) -> None:
    event = sdk_read(message.headers, message.value, message.key)
    headers = {name: value.decode() for name, value in message.headers}
    assert event.get_specversion() == "1.0" and event.get_id() == headers["ce_id"] == message.event_id
    assert event.get_type() == headers["ce_type"] and event.get_source() == headers["ce_source"]
    assert event.get_subject() == message.key.decode() == event.get_extension("partitionkey")
    assert event.get_datacontenttype() == "application/json"
    time = event.get_time()
    assert time is not None and time.utcoffset() is not None
    assert event.get_data() == json.loads(message.value)


# --- billing's answers: the documented results channel is the truth --------------------------------------


def results_messages() -> dict[str, dict[str, Any]]:
    document = json.loads((SCHEMAS_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    channel = document["channels"]["compensationResults"]
    names = [ref["$ref"].rsplit("/", 1)[-1] for ref in channel["messages"].values()]
    return {name: document["components"]["messages"][name] for name in names}


def documented(type_: str, mode: str) -> dict[str, Any]:
    content_type = "application/cloudevents+json" if mode == "structured" else "application/json"
    [message] = [
        m for m in results_messages().values() if m["contentType"] == content_type and type_ in m["title"]
    ]
    return message


def payload_validator(message: dict[str, Any]) -> Draft202012Validator:
    path = schema_path(message["payload"]["$ref"])
    schema = json.loads((SCHEMAS_DIR / path).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    return Draft202012Validator(schema, registry=registry)


def assert_documented(message: kafka.KafkaMessage, type_: str, mode: str) -> None:
    spec = documented(type_, mode)
    headers = {name: value.decode() for name, value in message.headers.items()}
    assert Draft202012Validator(spec["headers"]).is_valid(headers), headers
    body = json.loads(message.value)
    payload_validator(spec).validate(body)
    if message.key is not None:
        key = message.key.decode() if isinstance(message.key, bytes) else message.key
        assert Draft202012Validator(spec["bindings"]["kafka"]["key"]).is_valid(key)


REQUEST = {"request_id": "req-1", "case_id": "case-1", "kind": "refund", "amount": "40.00", "currency": "EUR"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("settled", [True, False])
def test_the_example_billing_answer_matches_the_documented_channel_and_is_accepted(
    mode: str, settled: bool
) -> None:
    message = answer_record(REQUEST, settled, "PAY-1" if settled else "card expired", mode)
    type_ = "recovery.compensation." + ("settled" if settled else "failed")
    assert_documented(message, type_, mode)
    result = decode_result(*record_of(message))
    assert (result.request_id, result.settled, result.source) == ("req-1", settled, "/examples/billing")
    assert result.detail == ("PAY-1" if settled else "card expired")
    assert message.key == "req-1"


@pytest.mark.parametrize("mode", MODES)
def test_a_bare_sdk_answer_without_subject_content_type_or_key_is_documented_and_accepted(mode: str) -> None:
    event = CloudEvent(
        attributes={"source": "/billing", "type": "recovery.compensation.settled"},
        data={"request_id": "req-2"},
    )
    message = ENCODERS[mode](event)
    assert message.key is None and "ce_subject" not in message.headers
    assert_documented(message, "recovery.compensation.settled", mode)
    assert decode_result(*record_of(message)).request_id == "req-2"


def test_the_documented_required_result_headers_are_exactly_those_decode_result_requires() -> None:
    message = answer_record(REQUEST, True, "PAY-1")
    spec = documented("recovery.compensation.settled", "binary")
    required = set(spec["headers"]["required"])
    assert required == {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"}
    for name in message.headers:
        value, headers = record_of(message)
        without = [(n, v) for n, v in headers if n != name]
        if name in required:
            with pytest.raises(InvalidMessage):
                decode_result(value, without)
        else:  # documented as optional: the answer is still accepted without it
            assert decode_result(value, without).request_id == "req-1", name
    assert set(message.headers) - required == {"ce_subject", "content-type"}


def test_the_results_channel_documents_both_modes_of_both_answers_and_no_required_key() -> None:
    messages = results_messages()
    assert {(m["contentType"], m["title"].split(" ")[0]) for m in messages.values()} == {
        (content_type, type_)
        for content_type in ("application/json", "application/cloudevents+json")
        for type_ in ("recovery.compensation.settled", "recovery.compensation.failed")
    }
    for message in messages.values():
        key = message["bindings"]["kafka"]["key"]
        assert "not read" in key["description"] and "minLength" not in key


def request_event(request_id: str, amount: str, event_id: str) -> CloudEvent:
    data = {**REQUEST, "request_id": request_id, "amount": amount}
    attributes = {"id": event_id, "source": "urn:recovery-loop", "type": "recovery.compensation.requested"}
    return CloudEvent(attributes=attributes, data=data)


def test_the_example_billing_pays_a_request_once_and_answers_a_repeat_with_the_same_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    billing = Billing(Decimal("50"), "binary", "/billing")
    first = billing.handle(request_event("req-1", "40.00", "e-1"))
    assert first is not None and first.settled
    assert billing.handle(request_event("req-1", "40.00", "e-1")) is None  # the same record again: skipped
    repeat = billing.handle(request_event("req-1", "40.00", "e-1b"))  # the same request, another event
    assert repeat is not None and repeat.record.headers["ce_id"] == first.record.headers["ce_id"]
    refused = billing.handle(request_event("req-2", "50.01", "e-2"))
    assert refused is not None and not refused.settled and "above the demo limit" in refused.detail
    other = CloudEvent({"source": "/x", "type": "recovery.case.opened"}, {"case_id": "c"})
    assert billing.handle(other) is None and billing.handle(None) is None
    printed = capsys.readouterr().out
    assert (
        printed.count("paid ") == 1 and printed.count("refused ") == 1 and "already answered req-1" in printed
    )
