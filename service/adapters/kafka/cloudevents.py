"""CloudEvents 1.0 Kafka protocol binding for signals: decode binary or structured records, encode binary."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from service.adapters.kafka.wire import (
    DATA_MODELS,
    EVENT_MODELS,
    JSON_CONTENT_TYPE,
    MAX_TEXT_LENGTH,
    SIGNAL_TYPES,
    SPECVERSION,
    STRUCTURED_CONTENT_TYPE,
    TYPE_BY_KIND,
    CloudEventAttributes,
    CommonSignalData,
)
from service.domain.signals import Signal, SignalKind

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time")
TRACE_HEADERS = frozenset({"ce_traceparent", "ce_tracestate"})
"""Read leniently: one repeated, without a value or not UTF-8 reads as absent instead of refusing the record."""
_MAX_QUOTED = 80
_MAX_ERRORS = 3


class InvalidMessage(Exception):
    """A record that is not a valid signal CloudEvent; `reason` is safe to log (no customer text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Headers = dict[str, list[bytes | None]]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class _Mode:
    """How a content mode names attributes in reasons: the missing-attribute label and the error prefix."""

    missing: str
    prefix: str


_BINARY = _Mode(missing="header ce_", prefix="ce_")
_STRUCTURED = _Mode(missing="attribute ", prefix="")


def decode_signal(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    received_at: datetime,
    expected_kind: SignalKind | None = None,
    max_text_length: int = MAX_TEXT_LENGTH,
) -> Signal:
    """Decode one Kafka record in binary or structured mode into a Signal; raises only InvalidMessage."""
    signal = None
    if expected_kind is not None:
        signal = _decode_valid(value, headers, received_at, expected_kind)
    if signal is None:
        signal = _decode_careful(value, headers, received_at, expected_kind)
    if signal.text is not None and len(signal.text) > max_text_length:
        _fail(f"text_too_long: the customer's free text is longer than {max_text_length} characters")
    return signal


def _decode_careful(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    received_at: datetime,
    expected_kind: SignalKind | None,
) -> Signal:
    """Every check in turn, so a refusal names the first thing wrong."""
    index = _index_headers(headers)
    body = _body(value)
    if _is_structured(index):
        attributes, data = _read_structured(body)
        return _to_signal(attributes, data, _STRUCTURED, received_at, expected_kind)
    attributes = _read_binary_attributes(index)
    return _to_signal(attributes, _parse_json(body, "data"), _BINARY, received_at, expected_kind)


def decode_event(
    value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> tuple[CloudEventAttributes, Any]:
    """Any CloudEvent in either mode: its validated attributes and its data as parsed JSON."""
    index = _index_headers(headers)
    body = _body(value)
    if _is_structured(index):
        attributes, data = _read_structured(body)
        return _validate_attributes(attributes, _STRUCTURED), data
    attributes = _read_binary_attributes(index)
    return _validate_attributes(attributes, _BINARY), _parse_json(body, "data")


def validate_data(model: type[ModelT], data: Any) -> ModelT:
    """Data checked against its wire model; InvalidMessage names the field, never the input."""
    if not isinstance(data, dict):
        _fail("data is not a JSON object")
    return _validate(model, data, "data.")


def encode_binary(
    *, id: str, source: str, type: str, subject: str, time: datetime, data: Mapping[str, Any]
) -> tuple[list[tuple[str, bytes]], bytes]:
    """Encode a CloudEvent in binary content mode: (headers, body) with attributes in ce_* headers."""
    attributes = _attributes(id=id, source=source, type=type, subject=subject, time=time)
    headers = [(f"{CE_PREFIX}{name}", text.encode()) for name, text in attributes.items()]
    headers.append((CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.encode()))
    return headers, _dumps(data)


def encode_structured(
    *, id: str, source: str, type: str, subject: str, time: datetime, data: Mapping[str, Any]
) -> tuple[list[tuple[str, bytes]], bytes]:
    """Encode a CloudEvent in structured content mode: (headers, body) with the whole event as JSON."""
    attributes = _attributes(id=id, source=source, type=type, subject=subject, time=time)
    event = {**attributes, "datacontenttype": JSON_CONTENT_TYPE, "data": data}
    return [(CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE.encode())], _dumps(event)


def format_time(time: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix; the time must be timezone-aware."""
    if time.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return time.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- decoding ---------------------------------------------------------------------------------------------


def _decode_valid(
    value: object, headers: Sequence[tuple[str, bytes]], received_at: datetime, kind: SignalKind
) -> Signal | None:
    """The hot path for a well-formed record: pydantic parses and validates the JSON in one pass.

    None for anything it is not sure of; the careful path below then decides, and says what is wrong.
    """
    if not isinstance(value, bytes) or b"NaN" in value or b"Infinity" in value:
        return None  # json.loads would be asked about NaN and Infinity, which JSON does not have
    index: dict[str, str] = {}
    try:
        for name, raw in headers:
            key = name.lower()
            if key in index or not isinstance(raw, bytes):
                return None
            index[key] = raw.decode("utf-8")
    except (ValueError, TypeError, AttributeError):
        return None
    content_type = index.get(CONTENT_TYPE_HEADER)
    try:
        if content_type is not None and _media_type(content_type) == STRUCTURED_CONTENT_TYPE:
            event = EVENT_MODELS[kind].model_validate_json(value)
            envelope: CloudEventAttributes = event
            data: CommonSignalData = event.data
            if event.datacontenttype is not None and _media_type(event.datacontenttype) != JSON_CONTENT_TYPE:
                return None
        else:
            if content_type is not None and _media_type(content_type) != JSON_CONTENT_TYPE:
                return None
            attributes = {k[3:]: v for k, v in index.items() if k.startswith(CE_PREFIX) and len(k) > 3}
            if attributes.get("specversion") != SPECVERSION:
                return None
            envelope = CloudEventAttributes.model_validate(attributes)
            data = DATA_MODELS[kind].model_validate_json(value)
    except ValidationError:
        return None
    if envelope.type != TYPE_BY_KIND[kind] or envelope.subject not in (None, data.customer_id):
        return None
    return _signal(envelope, kind, data, received_at)


def _fail(reason: str) -> NoReturn:
    raise InvalidMessage(reason)


def _quote(text: str) -> str:
    return repr(text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "...")


def _index_headers(headers: Sequence[tuple[str, bytes]]) -> Headers:
    try:
        items = tuple(headers)
    except TypeError:
        _fail("malformed headers")
    index: Headers = {}
    for item in items:
        name, raw = _header_item(item)
        index.setdefault(name.lower(), []).append(raw)
    return index


def _header_item(item: object) -> tuple[str, bytes | None]:
    if not isinstance(item, tuple | list) or len(item) != 2:
        _fail("malformed headers")
    name, raw = item
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    if not isinstance(name, str) or not (raw is None or isinstance(raw, bytes | bytearray | memoryview)):
        _fail("malformed headers")
    return name, None if raw is None else bytes(raw)


def _header_text(index: Headers, name: str) -> str | None:
    values = index.get(name)
    if values is None:
        return None
    if len(values) > 1:
        _fail(f"duplicate header {name}")
    raw = values[0]
    if raw is None:
        _fail(f"header {name} has no value")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"header {name} is not valid UTF-8")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_structured(index: Headers) -> bool:
    content_type = _header_text(index, CONTENT_TYPE_HEADER)
    return content_type is not None and _media_type(content_type) == STRUCTURED_CONTENT_TYPE


def _body(value: bytes | None) -> bytes:
    if value is None:
        _fail("message has no value")
    if not isinstance(value, bytes | bytearray | memoryview):
        _fail("message value is not bytes")
    return bytes(value)


def _parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        _fail(f"{what} is not valid UTF-8")
    except (ValueError, RecursionError):
        _fail(f"{what} is not valid JSON")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _read_structured(body: bytes) -> tuple[dict[str, Any], Any]:
    event = _parse_json(body, "structured event")
    if not isinstance(event, dict):
        _fail("structured event is not a JSON object")
    if "data" not in event:
        _fail("missing attribute data")
    _check_json_content_type(event.get("datacontenttype"), "attribute datacontenttype")
    data = event.pop("data")
    return event, data


def _read_binary_attributes(index: Headers) -> dict[str, Any]:
    _check_json_content_type(_header_text(index, CONTENT_TYPE_HEADER), "header content-type")
    names = [name for name in index if name.startswith(CE_PREFIX) and len(name) > len(CE_PREFIX)]
    return {name[len(CE_PREFIX) :]: _attribute_text(index, name) for name in names}


def _attribute_text(index: Headers, name: str) -> str | None:
    if name not in TRACE_HEADERS:
        return _header_text(index, name)
    values = index[name]
    raw = values[0] if len(values) == 1 else None
    try:
        return None if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_json_content_type(content_type: object, label: str) -> None:
    if content_type is None:
        return
    if not isinstance(content_type, str) or _media_type(content_type) != JSON_CONTENT_TYPE:
        shown = _quote(content_type) if isinstance(content_type, str) else "a non-string value"
        _fail(f"unsupported {label} {shown} (expected {JSON_CONTENT_TYPE})")


def _to_signal(
    attributes: dict[str, Any],
    data: Any,
    mode: _Mode,
    received_at: datetime,
    expected_kind: SignalKind | None,
) -> Signal:
    envelope = _validate_attributes(attributes, mode)
    kind, model = _resolve_type(envelope.type, expected_kind)
    payload = _validate_data(model, data)
    if envelope.subject is not None and envelope.subject != payload.customer_id:
        _fail("subject does not match data.customer_id")
    return _signal(envelope, kind, payload, received_at)


def _signal(
    envelope: CloudEventAttributes, kind: SignalKind, data: CommonSignalData, received_at: datetime
) -> Signal:
    return Signal(
        source=envelope.source,
        id=envelope.id,
        kind=kind,
        occurred_at=envelope.time,
        received_at=received_at,
        traceparent=envelope.traceparent,
        tracestate=envelope.tracestate if envelope.traceparent is not None else None,
        **data.signal_fields(),
    )


def _validate_attributes(attributes: dict[str, Any], mode: _Mode) -> CloudEventAttributes:
    for name in REQUIRED_ATTRIBUTES:
        if attributes.get(name) is None:
            _fail(f"missing {mode.missing}{name}")
    if attributes["specversion"] != SPECVERSION:
        _fail(f"unsupported specversion (expected {SPECVERSION})")
    return _validate(CloudEventAttributes, attributes, mode.prefix)


def _resolve_type(type_: str, expected_kind: SignalKind | None) -> tuple[SignalKind, type[CommonSignalData]]:
    if type_ not in SIGNAL_TYPES:
        _fail(f"unknown type {_quote(type_)}")
    kind, model = SIGNAL_TYPES[type_]
    if expected_kind is not None and kind != expected_kind:
        _fail(f"type {_quote(type_)} is not accepted on this topic")
    return kind, model


def _validate_data(model: type[CommonSignalData], data: Any) -> CommonSignalData:
    if not isinstance(data, dict):
        _fail("data is not a JSON object")
    return _validate(model, data, "data.")


def _validate(model: type[ModelT], value: dict[str, Any], prefix: str) -> ModelT:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise InvalidMessage(_reason(error, prefix)) from None


def _reason(error: ValidationError, prefix: str) -> str:
    """A reason from each error's location and message, never its input."""
    details = error.errors(include_url=False, include_context=False)
    parts = [_describe(detail, prefix) for detail in details[:_MAX_ERRORS]]
    if len(details) > _MAX_ERRORS:
        parts.append(f"and {len(details) - _MAX_ERRORS} more")
    return "; ".join(parts)


def _describe(detail: Mapping[str, Any], prefix: str) -> str:
    location = prefix + ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "time_out_of_range":
        return f"time_out_of_range: {location} must be from 1970-01-01T00:00:00Z up to 2100-01-01T00:00:00Z"
    if detail["type"] == "string_pattern_mismatch" and "\\u0000" in str(detail["msg"]):
        return f"{location}: contains a control character"
    message = str(detail["msg"]).removeprefix("Value error, ")
    given = detail.get("input")
    if isinstance(given, str) and given and given in message:
        message = str(detail["type"])  # defence in depth: a message that echoes the input is not used
    return f"{location}: {message}"


# --- encoding ---------------------------------------------------------------------------------------------


def _attributes(*, id: str, source: str, type: str, subject: str, time: datetime) -> dict[str, str]:
    return {
        "specversion": SPECVERSION,
        "id": id,
        "source": source,
        "type": type,
        "subject": subject,
        "time": format_time(time),
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode("utf-8")


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
