"""The CloudEvents Kafka binding for inbound signals: decoding both content modes, refusals, encoding."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal, encode_binary, encode_structured
from service.adapters.kafka.wire import TYPE_BY_KIND
from service.domain.signals import Category, Channel, Money, Signal, SignalKind, TicketPriority, Tier

RECEIVED = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
TIME = "2018-04-05T03:56:24Z"
OCCURRED = datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC)
CUSTOMER = "C-1001"
REMOVE = object()  # an override that deletes the attribute

DATA: dict[SignalKind, dict[str, Any]] = {
    SignalKind.COMPLAINT: {
        "customer_id": CUSTOMER,
        "customer_tier": "gold",
        "job_id": "J-42",
        "channel": "phone",
        "amount_at_stake": {"amount": "120.50", "currency": "EUR"},
        "text": "The engineer never turned up and nobody called.",
        "category": "missed_appointment",
    },
    SignalKind.NPS: {"customer_id": CUSTOMER, "score": 3, "comment": "Slow and unfriendly."},
    SignalKind.REVIEW: {
        "customer_id": CUSTOMER,
        "rating": 2,
        "platform": "google",
        "text": "Boiler still broken after two visits.",
        "url": "https://reviews.example/r/1",
    },
    SignalKind.CALLBACK: {
        "customer_id": CUSTOMER,
        "original_job_id": "J-7",
        "reason": "Leak came back the next day.",
        "days_since_visit": 4,
    },
    SignalKind.TICKET: {
        "customer_id": CUSTOMER,
        "ticket_id": "T-9",
        "priority": "urgent",
        "escalated": True,
        "text": "Water coming through the ceiling.",
    },
}
TEXT_FIELD = {
    SignalKind.COMPLAINT: "text",
    SignalKind.NPS: "comment",
    SignalKind.REVIEW: "text",
    SignalKind.CALLBACK: "reason",
    SignalKind.TICKET: "text",
}
Record = tuple[bytes, list[tuple[str, bytes]]]  # (value, headers), as a consumer sees it
Encoded = tuple[list[tuple[str, bytes]], bytes]  # (headers, value), as the encoders return it


def attributes(kind: SignalKind, overrides: dict[str, Any]) -> dict[str, Any]:
    """Context attributes in the shape of the CloudEvents Kafka binding examples, with overrides."""
    base: dict[str, Any] = {
        "specversion": "1.0",
        "type": TYPE_BY_KIND[kind],
        "source": "/crm/signals",
        "id": "1234-1234-1234",
        "time": TIME,
        "subject": CUSTOMER,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not REMOVE}


def binary(kind: SignalKind, data: Any = None, **overrides: Any) -> Record:
    """A binary-mode record: attributes in ce_* headers, data as the value."""
    headers = [(f"ce_{name}", str(value).encode()) for name, value in attributes(kind, overrides).items()]
    headers.append(("content-type", b"application/json"))
    return json.dumps(DATA[kind] if data is None else data).encode(), headers


def structured(kind: SignalKind, data: Any = None, **overrides: Any) -> Record:
    """A structured-mode record: the whole event as the value."""
    event = {"datacontenttype": "application/json", **attributes(kind, overrides)}
    event["data"] = DATA[kind] if data is None else data
    return json.dumps(event).encode(), [("content-type", b"application/cloudevents+json")]


MODES: list[Callable[..., Record]] = [binary, structured]


def decode(record: Record, expected_kind: SignalKind | None = None) -> Signal:
    value, headers = record
    return decode_signal(value, headers, RECEIVED, expected_kind)


def refusal(record: Record, expected_kind: SignalKind | None = None) -> str:
    with pytest.raises(InvalidMessage) as caught:
        decode(record, expected_kind)
    return caught.value.reason


def with_data(kind: SignalKind, **changes: Any) -> dict[str, Any]:
    data = {**DATA[kind], **changes}
    return {name: value for name, value in data.items() if value is not REMOVE}


# --- decoding ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(SignalKind))
def test_decodes_every_kind_in_both_modes(mode: Callable[..., Record], kind: SignalKind) -> None:
    signal = decode(mode(kind), expected_kind=kind)
    assert (signal.kind, signal.source, signal.id, signal.customer_id) == (
        kind,
        "/crm/signals",
        "1234-1234-1234",
        CUSTOMER,
    )
    assert signal.occurred_at == OCCURRED
    assert signal.received_at == RECEIVED
    assert signal.text == DATA[kind][TEXT_FIELD[kind]]


@pytest.mark.parametrize("mode", MODES)
def test_complaint_fields_map_onto_the_signal(mode: Callable[..., Record]) -> None:
    signal = decode(mode(SignalKind.COMPLAINT))
    assert signal.customer_tier is Tier.GOLD
    assert signal.job_id == "J-42"
    assert signal.channel is Channel.PHONE
    assert signal.amount_at_stake == Money(amount=Decimal("120.50"), currency="EUR")
    assert signal.category is Category.MISSED_APPOINTMENT


def test_kind_specific_fields_map_onto_the_signal() -> None:
    assert decode(binary(SignalKind.NPS)).score == 3
    review = decode(binary(SignalKind.REVIEW))
    assert (review.rating, review.platform, review.url) == (2, "google", "https://reviews.example/r/1")
    callback = decode(binary(SignalKind.CALLBACK))
    assert (callback.original_job_id, callback.days_since_visit) == ("J-7", 4)
    ticket = decode(binary(SignalKind.TICKET))
    assert (ticket.ticket_id, ticket.priority, ticket.escalated) == ("T-9", TicketPriority.URGENT, True)


def test_minimal_data_gets_defaults() -> None:
    signal = decode(binary(SignalKind.NPS, {"customer_id": CUSTOMER, "score": 0}))
    assert signal.customer_tier is Tier.STANDARD
    assert (signal.text, signal.job_id, signal.channel, signal.amount_at_stake) == (None, None, None, None)
    assert signal.score == 0


def test_subject_is_optional() -> None:
    assert decode(binary(SignalKind.NPS, subject=REMOVE)).customer_id == CUSTOMER
    assert decode(structured(SignalKind.NPS, subject=REMOVE)).customer_id == CUSTOMER


def test_unknown_data_fields_and_extension_attributes_are_ignored() -> None:
    data = with_data(SignalKind.NPS, sentiment_hint="angry", nested={"a": [1, 2]})
    assert decode(binary(SignalKind.NPS, data, traceparent="00-abc-def-01")).score == 3
    assert decode(structured(SignalKind.NPS, data, partitionkey=CUSTOMER)).score == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-04-05T05:56:24+02:00", OCCURRED),
        ("2018-04-04T22:56:24-05:00", OCCURRED),
        ("2018-04-05t03:56:24z", OCCURRED),
        ("2018-04-05 03:56:24Z", OCCURRED),
        ("2018-04-05T03:56:24.123456789Z", OCCURRED + timedelta(microseconds=123456)),
        ("2018-04-05T03:56:24.5+00:00", OCCURRED + timedelta(microseconds=500000)),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_time_is_normalised_to_utc(mode: Callable[..., Record], raw: str, expected: datetime) -> None:
    occurred = decode(mode(SignalKind.NPS, time=raw)).occurred_at
    assert occurred == expected
    assert occurred.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "Application/JSON"],
)
def test_binary_content_type_may_be_absent_or_json(content_type: str | None) -> None:
    value, headers = binary(SignalKind.NPS)
    headers = [(name, raw) for name, raw in headers if name != "content-type"]
    if content_type is not None:
        headers.append(("Content-Type", content_type.encode()))
    assert decode((value, headers)).score == 3


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("content-type", "application/cloudevents+json"),
        ("Content-Type", "application/cloudevents+json; charset=UTF-8"),
        ("CONTENT-TYPE", "Application/CloudEvents+JSON"),
    ],
)
def test_structured_mode_is_detected_from_content_type(name: str, content_type: str) -> None:
    value, _ = structured(SignalKind.NPS)
    assert decode((value, [(name, content_type.encode())])).score == 3


def test_structured_mode_ignores_ce_headers() -> None:
    value, headers = structured(SignalKind.NPS)
    assert decode((value, [*headers, ("ce_id", b"other")])).id == "1234-1234-1234"


def test_headers_may_be_bytearray_or_list_pairs() -> None:
    value, headers = binary(SignalKind.NPS)
    assert decode((value, [[name, bytearray(raw)] for name, raw in headers])).score == 3  # type: ignore[misc]


# --- refusals ---------------------------------------------------------------------------------------------


STRUCTURED_HEADERS = [("content-type", b"application/cloudevents+json")]


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{not json", STRUCTURED_HEADERS, "structured event is not valid JSON"),
        (b"\xff\xfe{}", STRUCTURED_HEADERS, "structured event is not valid UTF-8"),
        (b'{"a": NaN}', STRUCTURED_HEADERS, "structured event is not valid JSON"),
        (b"[" * 100_000, STRUCTURED_HEADERS, "structured event is not valid JSON"),
        (b"[]", STRUCTURED_HEADERS, "structured event is not a JSON object"),
        (b"", STRUCTURED_HEADERS, "structured event is not valid JSON"),
        (None, STRUCTURED_HEADERS, "message has no value"),
        (None, [], "message has no value"),
    ],
)
def test_unparseable_records_are_refused(
    value: bytes | None, headers: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode_signal(value, headers, RECEIVED)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"nope", "data is not valid JSON"),
        (b"\xc3\x28", "data is not valid UTF-8"),
        (b'{"score": Infinity}', "data is not valid JSON"),
        (b'"just a string"', "data is not a JSON object"),
        (b"null", "data is not a JSON object"),
    ],
)
def test_unparseable_binary_data_is_refused(value: bytes, reason: str) -> None:
    _, headers = binary(SignalKind.NPS)
    assert refusal((value, headers)) == reason


@pytest.mark.parametrize("name", ["specversion", "id", "source", "type", "time"])
def test_missing_required_attribute_is_refused(name: str) -> None:
    assert refusal(binary(SignalKind.NPS, **{name: REMOVE})) == f"missing header ce_{name}"
    assert refusal(structured(SignalKind.NPS, **{name: REMOVE})) == f"missing attribute {name}"


def test_structured_event_without_data_is_refused() -> None:
    event = attributes(SignalKind.NPS, {})
    assert refusal((json.dumps(event).encode(), STRUCTURED_HEADERS)) == "missing attribute data"


@pytest.mark.parametrize("mode", MODES)
def test_other_specversions_are_refused(mode: Callable[..., Record]) -> None:
    assert refusal(mode(SignalKind.NPS, specversion="0.3")) == "unsupported specversion (expected 1.0)"


def test_a_non_string_specversion_is_refused() -> None:
    assert refusal(structured(SignalKind.NPS, specversion=1.0)) == "unsupported specversion (expected 1.0)"


@pytest.mark.parametrize("mode", MODES)
def test_unknown_type_is_refused(mode: Callable[..., Record]) -> None:
    assert refusal(mode(SignalKind.NPS, type="recovery.signal.foo")) == "unknown type 'recovery.signal.foo'"


@pytest.mark.parametrize("mode", MODES)
def test_a_type_of_another_kind_is_refused_on_a_topic(mode: Callable[..., Record]) -> None:
    reason = refusal(mode(SignalKind.NPS), expected_kind=SignalKind.COMPLAINT)
    assert reason == "type 'recovery.signal.nps' is not accepted on this topic"


@pytest.mark.parametrize(
    ("kind", "changes", "reason"),
    [
        (SignalKind.NPS, {"score": 11}, "data.score: Input should be less than or equal to 10"),
        (SignalKind.NPS, {"score": -1}, "data.score: Input should be greater than or equal to 0"),
        (SignalKind.NPS, {"score": "abc"}, "data.score: Input should be a valid integer"),
        (SignalKind.NPS, {"score": "7"}, "data.score: Input should be a valid integer"),
        (SignalKind.NPS, {"score": True}, "data.score: Input should be a valid integer"),
        (SignalKind.NPS, {"score": 7.0}, "data.score: Input should be a valid integer"),
        (SignalKind.NPS, {"score": REMOVE}, "data.score: Field required"),
        (SignalKind.REVIEW, {"rating": 0}, "data.rating: Input should be greater than or equal to 1"),
        (SignalKind.REVIEW, {"rating": 6}, "data.rating: Input should be less than or equal to 5"),
        (SignalKind.COMPLAINT, {"customer_id": REMOVE}, "data.customer_id: Field required"),
        (
            SignalKind.COMPLAINT,
            {"customer_id": ""},
            "data.customer_id: String should have at least 1 character",
        ),
        (SignalKind.COMPLAINT, {"customer_id": 1001}, "data.customer_id: Input should be a valid string"),
        (SignalKind.COMPLAINT, {"text": REMOVE}, "data.text: Field required"),
        (SignalKind.COMPLAINT, {"category": "weather"}, "data.category: Input should be 'service_delay', "),
        (
            SignalKind.COMPLAINT,
            {"customer_tier": "diamond"},
            "data.customer_tier: Input should be 'standard'",
        ),
        (SignalKind.COMPLAINT, {"channel": "fax"}, "data.channel: Input should be 'phone'"),
        (
            SignalKind.COMPLAINT,
            {"amount_at_stake": {"amount": 120.5, "currency": "EUR"}},
            "data.amount_at_stake",
        ),
        (
            SignalKind.COMPLAINT,
            {"amount_at_stake": {"amount": "1,5", "currency": "EUR"}},
            "data.amount_at_stake",
        ),
        (
            SignalKind.COMPLAINT,
            {"amount_at_stake": {"amount": "1.5", "currency": "eur"}},
            "data.amount_at_stake",
        ),
        (SignalKind.CALLBACK, {"original_job_id": REMOVE}, "data.original_job_id: Field required"),
        (
            SignalKind.CALLBACK,
            {"days_since_visit": -1},
            "data.days_since_visit: Input should be greater than",
        ),
        (SignalKind.TICKET, {"ticket_id": REMOVE}, "data.ticket_id: Field required"),
        (SignalKind.TICKET, {"priority": "asap"}, "data.priority: Input should be 'low'"),
        (SignalKind.TICKET, {"escalated": "yes"}, "data.escalated: Input should be a valid boolean"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_data_failing_its_model_is_refused(
    mode: Callable[..., Record], kind: SignalKind, changes: dict[str, Any], reason: str
) -> None:
    assert refusal(mode(kind, with_data(kind, **changes))).startswith(reason)


def test_several_data_errors_are_all_named() -> None:
    data = {"customer_id": "", "score": 99}
    reason = refusal(binary(SignalKind.NPS, data))
    assert "data.customer_id" in reason
    assert "data.score" in reason


@pytest.mark.parametrize("mode", MODES)
def test_subject_must_equal_the_customer_id(mode: Callable[..., Record]) -> None:
    assert refusal(mode(SignalKind.NPS, subject="C-9999")) == "subject does not match data.customer_id"


@pytest.mark.parametrize(
    "raw",
    [
        "2018-04-05T03:56:24",  # naive
        "2018-04-05",
        "2018-04-05T03:56Z",
        "2018-13-05T03:56:24Z",
        "2018-04-05T03:56:60Z",
        "2018-04-05T03:56:24+25:00",
        "0001-01-01T00:00:00+01:00",  # before datetime.min once in UTC
        "9999-12-31T23:59:59-01:00",  # after datetime.max once in UTC
        "1522900584",
        "yesterday",
    ],
)
def test_time_must_be_rfc3339_with_an_offset(raw: str) -> None:
    message = "must be an RFC 3339 timestamp with an offset, e.g. 2024-05-01T12:00:00Z"
    assert refusal(binary(SignalKind.NPS, time=raw)) == f"ce_time: {message}"
    assert refusal(structured(SignalKind.NPS, time=raw)) == f"time: {message}"


def test_a_non_string_time_is_refused() -> None:
    assert refusal(structured(SignalKind.NPS, time=1522900584)).startswith("time: must be an RFC 3339")


@pytest.mark.parametrize("name", ["id", "source", "type", "subject"])
def test_empty_attributes_are_refused(name: str) -> None:
    assert (
        refusal(binary(SignalKind.NPS, **{name: ""})) == f"ce_{name}: String should have at least 1 character"
    )


def test_non_string_structured_attributes_are_refused() -> None:
    assert refusal(structured(SignalKind.NPS, id=42)) == "id: Input should be a valid string"


def test_structured_data_must_be_an_object() -> None:
    event = {**attributes(SignalKind.NPS, {}), "data": None}
    assert refusal((json.dumps(event).encode(), STRUCTURED_HEADERS)) == "data is not a JSON object"


def test_structured_data_must_be_json() -> None:
    reason = refusal(structured(SignalKind.NPS, datacontenttype="application/xml"))
    assert reason == "unsupported attribute datacontenttype 'application/xml' (expected application/json)"


def test_binary_data_must_be_json() -> None:
    value, headers = binary(SignalKind.NPS)
    headers = [*(h for h in headers if h[0] != "content-type"), ("content-type", b"text/plain")]
    assert (
        refusal((value, headers))
        == "unsupported header content-type 'text/plain' (expected application/json)"
    )


@pytest.mark.parametrize("name", ["ce_id", "content-type"])
def test_duplicate_headers_are_refused(name: str) -> None:
    value, headers = binary(SignalKind.NPS)
    assert refusal((value, [*headers, (name, b"again")])) == f"duplicate header {name}"


def test_header_values_must_be_utf8() -> None:
    value, headers = binary(SignalKind.NPS, id=REMOVE)
    assert refusal((value, [*headers, ("ce_id", b"\xff")])) == "header ce_id is not valid UTF-8"


def test_header_values_must_be_present() -> None:
    value, headers = binary(SignalKind.NPS, id=REMOVE)
    assert refusal((value, [*headers, ("ce_id", None)])) == "header ce_id has no value"  # type: ignore[list-item]


@pytest.mark.parametrize("headers", [[("ce_id",)], [("ce_id", 42)], [(None, b"x")], "ce_id", 7])
def test_malformed_headers_are_refused(headers: Any) -> None:
    assert refusal((b"{}", headers)) == "malformed headers"


@pytest.mark.parametrize("kind", list(SignalKind))
@pytest.mark.parametrize("mode", MODES)
def test_reasons_never_contain_the_free_text(mode: Callable[..., Record], kind: SignalKind) -> None:
    secret = "Mrs Smith at 12 Acacia Avenue is furious"
    for broken in ({"customer_id": REMOVE}, {TEXT_FIELD[kind]: 42}, {"customer_tier": secret}):
        reason = refusal(mode(kind, with_data(kind, **{TEXT_FIELD[kind]: secret, **broken})))
        assert secret not in reason
    assert secret not in refusal(mode(kind, with_data(kind, **{TEXT_FIELD[kind]: secret}), subject="C-2"))


# --- encoding ---------------------------------------------------------------------------------------------


def test_encode_binary_headers_and_body() -> None:
    time = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    data = {"customer_id": CUSTOMER, "amount_at_stake": {"amount": Decimal("120.50"), "currency": "EUR"}}
    headers, body = encode_binary(
        id="e-1", source="/crm", type="recovery.signal.complaint", subject=CUSTOMER, time=time, data=data
    )
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"/crm"),
        ("ce_type", b"recovery.signal.complaint"),
        ("ce_subject", CUSTOMER.encode()),
        ("ce_time", b"2024-05-01T12:30:00Z"),
        ("content-type", b"application/json"),
    ]
    assert body == b'{"customer_id":"C-1001","amount_at_stake":{"amount":"120.50","currency":"EUR"}}'


def test_encode_structured_body() -> None:
    time = datetime(2024, 5, 1, 12, 30, 0, 250000, tzinfo=UTC)
    headers, body = encode_structured(
        id="e-1", source="/crm", type="recovery.signal.nps", subject=CUSTOMER, time=time, data={"score": 3}
    )
    assert headers == [("content-type", b"application/cloudevents+json")]
    assert json.loads(body) == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/crm",
        "type": "recovery.signal.nps",
        "subject": CUSTOMER,
        "time": "2024-05-01T12:30:00.250000Z",
        "datacontenttype": "application/json",
        "data": {"score": 3},
    }


def test_encode_serialises_datetimes_and_enums_in_data() -> None:
    data = {"at": datetime(2024, 1, 1, tzinfo=UTC), "tier": Tier.GOLD, "text": "naïve ✓"}
    _, body = encode_binary(id="e", source="/s", type="t", subject="c", time=OCCURRED, data=data)
    assert json.loads(body) == {"at": "2024-01-01T00:00:00Z", "tier": "gold", "text": "naïve ✓"}


def test_encode_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_binary(id="e", source="/s", type="t", subject="c", time=datetime(2024, 1, 1), data={})


@pytest.mark.parametrize("encode", [encode_binary, encode_structured])
@pytest.mark.parametrize("kind", list(SignalKind))
def test_encode_then_decode_round_trips(encode: Callable[..., Encoded], kind: SignalKind) -> None:
    headers, body = encode(
        id="evt-1", source="/crm", type=TYPE_BY_KIND[kind], subject=CUSTOMER, time=OCCURRED, data=DATA[kind]
    )
    signal = decode_signal(body, headers, RECEIVED, kind)
    assert (signal.kind, signal.id, signal.source, signal.occurred_at) == (kind, "evt-1", "/crm", OCCURRED)
    assert signal.text == DATA[kind][TEXT_FIELD[kind]]
    assert signal.customer_id == CUSTOMER


# --- properties -------------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "content-type",
        "Content-Type",
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
    ]
)
HEADER_VALUES = st.sampled_from(
    [b"application/json", b"application/cloudevents+json", b"1.0", TIME.encode(), b"recovery.signal.nps"]
)
HEADERS = st.lists(
    st.tuples(
        st.one_of(HEADER_NAMES, st.text(max_size=20)), st.one_of(HEADER_VALUES, st.binary(max_size=40))
    ),
    max_size=10,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_refuses(value: bytes | None, headers: Any, kind: SignalKind | None = None) -> None:
    try:
        decode_signal(value, headers, RECEIVED, kind)
    except InvalidMessage as refused:
        assert isinstance(refused.reason, str) and refused.reason


@FUZZ
@given(value=st.none() | st.binary(max_size=200), headers=HEADERS)
def test_arbitrary_bytes_and_headers_only_ever_raise_invalid_message(
    value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    decodes_or_refuses(value, headers)


@FUZZ
@given(
    kind=st.sampled_from(list(SignalKind)),
    mode=st.sampled_from(MODES),
    field=st.sampled_from(
        ["customer_id", "customer_tier", "channel", "amount_at_stake", "text", "score", "rating", "escalated"]
    ),
    replacement=JSON_VALUES,
    attribute=st.sampled_from(["specversion", "id", "source", "type", "time", "subject", "datacontenttype"]),
    attribute_value=JSON_VALUES,
)
def test_arbitrary_json_in_fields_and_attributes_only_ever_raises_invalid_message(
    kind: SignalKind,
    mode: Callable[..., Record],
    field: str,
    replacement: Any,
    attribute: str,
    attribute_value: Any,
) -> None:
    value, headers = mode(kind, with_data(kind, **{field: replacement}))
    decodes_or_refuses(value, headers, kind)
    value, headers = mode(kind, **{attribute: attribute_value})
    decodes_or_refuses(value, headers, kind)


@FUZZ
@given(
    kind=st.sampled_from(list(SignalKind)),
    mode=st.sampled_from(MODES),
    secret=st.text(min_size=11, max_size=60).map(lambda text: "§" + text),  # § never occurs in a reason
    defect=st.sampled_from(["customer_id", "score", "rating", "subject", "tier", "text_type", "amount"]),
)
def test_a_reason_never_contains_the_free_text_sent(
    kind: SignalKind, mode: Callable[..., Record], secret: str, defect: str
) -> None:
    changes: dict[str, Any] = {TEXT_FIELD[kind]: secret}
    overrides: dict[str, Any] = {}
    if defect == "subject":
        overrides["subject"] = "C-other"
    elif defect == "text_type":
        changes[TEXT_FIELD[kind]] = [secret]
    else:
        defects: dict[str, dict[str, Any]] = {
            "customer_id": {"customer_id": ""},
            "score": {"score": secret, "customer_tier": secret},
            "rating": {"rating": secret, "channel": secret},
            "tier": {"customer_tier": secret},
            "amount": {"amount_at_stake": {"amount": secret, "currency": secret}},
        }
        changes.update(defects[defect])
    reason = refusal(mode(kind, with_data(kind, **changes), **overrides))
    assert secret not in reason


# --- the hot path agrees with the careful one ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


@st.composite
def near_valid_records(draw: st.DrawFn) -> tuple[SignalKind, Record]:
    """Valid records of every kind in both modes, each with a few plausible mistakes (or none)."""
    kind = draw(st.sampled_from(list(SignalKind)))
    data = dict(DATA[kind])
    for name in draw(st.lists(st.sampled_from([*data, "amount_at_stake", "extra"]), max_size=2)):
        data[name] = draw(JSON_VALUES | st.just(REMOVE))
    overrides = {
        name: draw(
            st.sampled_from([REMOVE, None, "", "2.0", 7, TIME, "2018-04-05 03:56:24", *TYPE_BY_KIND.values()])
        )
        for name in draw(
            st.lists(st.sampled_from(["specversion", "id", "type", "time", "subject"]), max_size=2)
        )
    }
    value, headers = draw(st.sampled_from(MODES))(kind, with_data(kind, **data), **overrides)
    if draw(st.integers(0, 3)) == 0:  # a constant JSON does not have, in a field nobody reads
        value = b'{"unread": ' + draw(st.sampled_from([b"NaN", b"-Infinity", b"1"])) + b", " + value[1:]
    if draw(st.integers(0, 5)) == 0:
        headers = [*headers, draw(st.sampled_from(headers))]
    if draw(st.integers(0, 5)) == 0:
        headers = [(n, b"text/plain" if n == "content-type" else raw) for n, raw in headers]
    topic_kind = kind if draw(st.integers(0, 4)) else draw(st.sampled_from(list(SignalKind)))
    return topic_kind, (value, headers)


def outcome(decoder: Callable[..., Signal], kind: SignalKind, record: Record) -> Signal | str:
    try:
        return decoder(record[0], record[1], RECEIVED, kind)
    except InvalidMessage as refused:
        return refused.reason


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_records())
def test_the_fast_path_decides_exactly_as_the_careful_path(case: tuple[SignalKind, Record]) -> None:
    from service.adapters.kafka.cloudevents import _decode_careful

    kind, record = case
    assert outcome(decode_signal, kind, record) == outcome(_decode_careful, kind, record)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(SignalKind))
def test_valid_records_take_the_fast_path(mode: Callable[..., Record], kind: SignalKind) -> None:
    from service.adapters.kafka.cloudevents import _decode_careful, _decode_valid

    value, headers = mode(kind)
    fast = _decode_valid(value, headers, RECEIVED, kind)
    assert fast is not None
    assert fast == _decode_careful(value, headers, RECEIVED, kind)
