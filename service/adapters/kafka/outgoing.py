"""Outgoing CloudEvents: map one stored case event (a row of the event log) to the Kafka records to publish.

Every case event goes to the case-events topic as recovery.case.<name>, with the stored JSON as data and the
log's event id as id (staff's internal notes, INTERNAL_TYPES, are never published), every personal free text
in it null unless the service publishes free text (free_text.py). SLA warnings and breaches
go only to the SLA topic as recovery.sla.warning/breached,
with one id per case, SLA, kind and deadline. Every record is a binary-mode CloudEvent keyed by the case id,
and the same stored event always maps to the same records, so a re-publish after a crash repeats the ids.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, NoReturn

from pydantic import Field, PlainSerializer, PlainValidator, ValidationError, WithJsonSchema

from service.adapters.kafka.cloudevents import encode_binary, format_time
from service.adapters.kafka.free_text import without_free_text
from service.adapters.kafka.wire import NonEmptyStr, WireModel, parse_rfc3339
from service.app.ports import LoggedEvent
from service.config import Settings
from service.domain.events import CompensationKind
from service.domain.personal import CUSTOMER_ID, PersonalText
from service.domain.registry import EVENT_CLASSES, EVENTS, UnreadableEvent
from service.domain.severity import Severity
from service.domain.sla import CLOCK_NAME
from service.domain.timers import TimerKind, sla_event_id
from service.tracing import valid_traceparent

SOURCE: Final = "urn:recovery-loop"
STORED_CASE_PREFIX: Final = "case."
CASE_TYPE_PREFIX: Final = "recovery.case."
SLA_TYPES: Final[dict[str, tuple[str, TimerKind]]] = {
    "case.sla_warning": ("recovery.sla.warning", TimerKind.WARNING),
    "case.sla_breached": ("recovery.sla.breached", TimerKind.BREACH),
}
"""Stored SLA event type -> (outgoing CloudEvent type, timer kind); these go only to the SLA topic."""
INTERNAL_TYPES: Final = frozenset({"case.note_added"})
"""Stored case events that stay inside the service: staff's internal notes are never published."""

UTC_TIME_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"
UtcTime = Annotated[
    datetime,
    PlainValidator(parse_rfc3339),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": UTC_TIME_PATTERN}),
]
"""An instant: read from RFC 3339 with any offset, written as RFC 3339 in UTC with a Z suffix."""


CASE_EVENT_CLASSES: Final[dict[str, type[Any]]] = {
    stored_type: cls
    for stored_type, cls in EVENT_CLASSES.items()
    if stored_type.startswith(STORED_CASE_PREFIX)
    and stored_type not in SLA_TYPES
    and stored_type not in INTERNAL_TYPES
}
"""The case event types published on the case-events topic (stored type -> domain dataclass), each with a data
schema: the registry's case events but those published elsewhere (SLA) or never.

Any other stored case.X that is not an SLA event is still published, as recovery.case.X (forward compatible).
"""


def outgoing_case_type(stored_type: str) -> str:
    """The CloudEvent type of a stored case event on the case-events topic: case.X -> recovery.case.X."""
    return CASE_TYPE_PREFIX + stored_type.removeprefix(STORED_CASE_PREFIX)


class SlaEventData(WireModel):
    """Data of a recovery.sla.warning or recovery.sla.breached CloudEvent: an SLA clock warned or breached."""

    case_id: NonEmptyStr = Field(
        description="The case whose SLA clock fired; the Kafka record key and subject."
    )
    customer_id: Annotated[NonEmptyStr, CUSTOMER_ID] = Field(description="The customer the case is about.")
    severity: Severity = Field(description="The case's severity when the timer fired.")
    sla: str = Field(
        pattern=CLOCK_NAME.pattern,
        description="Which clock: first_response (acknowledge the customer), resolution (resolve the case), or"
        " a named clock from the SLA policy file (such as regulatory_final_response).",
    )
    deadline: UtcTime = Field(description="The deadline the warning or breach is for, RFC 3339 in UTC.")
    fired_at: UtcTime = Field(description="When the service decided the warning or breach, RFC 3339 in UTC.")


_SLA_FIELDS: Final = ("case_id", "customer_id", "severity", "sla", "deadline")


class CompensationRequestData(WireModel):
    """Data of a recovery.compensation.requested CloudEvent: billing is asked to refund, credit or comp."""

    request_id: NonEmptyStr = Field(description="Billing's idempotency key: one request, one payment, ever.")
    case_id: NonEmptyStr = Field(description="The recovery case; the Kafka record key and subject.")
    customer_id: Annotated[NonEmptyStr, CUSTOMER_ID] = Field(description="The customer to compensate.")
    kind: CompensationKind = Field(description="refund, credit or comped_service.")
    amount: str = Field(pattern=r"^[0-9]{1,18}(\.[0-9]{1,6})?$", description="Decimal string, e.g. 120.00.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    reason: PersonalText | None = Field(
        default=None,
        description="Why, in the staff's words; null unless the service publishes free text"
        " (RECOVERY_PUBLISH_FREE_TEXT).",
    )
    approved_by: NonEmptyStr = Field(
        description="Who approved it: the requester when it was within their limit."
    )


COMPENSATION_REQUESTED: Final = "recovery.compensation.requested"
_COMPENSATION_NAMESPACE: Final = uuid.UUID("a7f3c2d1-5e4b-4c8a-9f0e-1d2c3b4a5968")


def compensation_event_id(request_id: str) -> str:
    """One CloudEvent id per request id: billing drops any repeat."""
    return str(uuid.uuid5(_COMPENSATION_NAMESPACE, request_id))


@dataclass(frozen=True, slots=True)
class OutgoingTopics:
    """Where outgoing events go."""

    case_events: str
    sla: str
    compensation: str = "recovery.compensation.requests.v1"
    trends: str = "recovery.trends.v1"
    incidents: str = "recovery.incidents.v1"

    @classmethod
    def from_settings(cls, settings: Settings) -> OutgoingTopics:
        return cls(
            settings.topic_case_events,
            settings.topic_sla,
            settings.topic_compensation_requests,
            settings.topic_trends,
            settings.topic_incidents,
        )


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Kafka record to publish: a binary-mode CloudEvent; `event_id` is its ce_id."""

    topic: str
    key: bytes
    headers: list[tuple[str, bytes]]
    value: bytes
    event_id: str


def to_messages(
    event: LoggedEvent, topics: OutgoingTopics, source: str = SOURCE, free_text: bool = False
) -> list[OutgoingMessage]:
    """The records to publish for one stored event; ValueError if its shape is wrong. Its personal free text is
    null unless `free_text` (RECOVERY_PUBLISH_FREE_TEXT: the feed has opened it).

    An event stored with a traceparent (its cause's trace context) goes out with it as ce_traceparent, the
    CloudEvents distributed-tracing extension, on every record it maps to: the trace of the signal or request
    that caused it continues in whoever consumes the record.
    """
    current = _current(event)
    if not free_text:
        data = _without_free_text(current)
        if data is not current.data:  # (built whole: dataclasses.replace costs three times as much)
            e = current
            current = LoggedEvent(
                e.position, e.stream_id, e.version, e.event_id, e.type, data, e.recorded_at, e.traceparent, e.schema_version
            )
    messages = _mapped(current, topics, source)
    traceparent = valid_traceparent(event.traceparent)  # checked when stored; the log is not a wire contract
    if traceparent is not None:
        for m in messages:
            m.headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return messages


TRACEPARENT_HEADER: Final = "ce_traceparent"


def _current(event: LoggedEvent) -> LoggedEvent:
    """The event with its data in its type's current shape: consumers read only the current schemas. A type
    this build does not know goes out as it is stored (forward compatible); a version it cannot read is the
    event's fault, so the relay parks it with the registry's reason (which names no stored value)."""
    shape = EVENTS.get(event.type)
    if shape is None or event.schema_version == shape.version:
        return event
    try:
        return dataclasses.replace(event, data=shape.current_json(event.schema_version, event.data))
    except UnreadableEvent as error:
        _invalid(event, str(error))


def _without_free_text(event: LoggedEvent) -> str:
    try:
        return without_free_text(event.type, event.data)
    except (ValueError, RecursionError):
        _invalid(event, "data is not JSON")


def _mapped(event: LoggedEvent, topics: OutgoingTopics, source: str) -> list[OutgoingMessage]:
    if event.type == TREND_STORED:
        return [_trend_message(event, topics.trends, source)]
    if event.type in INCIDENT_STORED:
        return [_incident_message(event, topics.incidents, source)]
    if not event.type.startswith(STORED_CASE_PREFIX) or event.type == STORED_CASE_PREFIX:
        _invalid(event, "not a case event type")
    if event.type in INTERNAL_TYPES:
        return []
    if event.type == ERASURE_STORED:
        return _erasure_messages(event, _parse(event), topics.case_events, source)
    if event.type not in SLA_TYPES and event.type not in _TO_BILLING:
        fast = _case_message_fast(event, topics.case_events, source)
        if fast is not None:
            return [fast]
    data = _parse(event)
    sla = SLA_TYPES.get(event.type)
    if sla is not None:
        return [_sla_message(event, data, topics.sla, source, *sla)]
    messages = [_case_message(event, data, topics.case_events, source)]
    if _goes_to_billing(event.type, data):
        messages.append(_compensation_message(event, data, topics.compensation, source))
    return messages


class CustomerErasedData(WireModel):
    """Data of a recovery.customer.erased CloudEvent: erase what you hold about this customer."""

    customer_id: Annotated[NonEmptyStr, CUSTOMER_ID] = Field(
        description="The customer whose personal data the service erased: erase yours too. This event is the"
        " last record that names them; the service keeps the id no longer than it takes to publish it."
    )
    pseudonym: NonEmptyStr = Field(
        description="What the customer's cases carry in place of the customer id from now on."
    )
    case_ids: list[str] = Field(description="Every case of the customer's, each now under the pseudonym.")
    erased_at: UtcTime = Field(description="When the data was erased, RFC 3339 in UTC.")
    erased_by: NonEmptyStr = Field(description="The owner who erased it.")


ERASURE_STORED: Final = "case.personal_data_erased"
CUSTOMER_ERASED: Final = "recovery.customer.erased"
_ERASED_NAMESPACE: Final = uuid.UUID("3c1f4e2a-8b7d-4f6e-9a5c-2d1e0f9b8a76")


def _erasure_messages(event: LoggedEvent, data: dict[str, Any], topic: str, source: str) -> list[OutgoingMessage]:
    """recovery.case.personal_data_erased for the case, without the customer id and case ids; on the customer's
    latest case (its event still holding the id) recovery.customer.erased too, keyed by that case."""
    customer_id = data.get("customer_id")
    case_data = {k: v for k, v in data.items() if k not in ("customer_id", "case_ids")}
    messages = [_case_message(event, case_data, topic, source)]
    if customer_id is None:
        return messages
    try:
        erased = CustomerErasedData.model_validate(
            {
                "customer_id": customer_id,
                "pseudonym": data.get("pseudonym"),
                "case_ids": data.get("case_ids"),
                "erased_at": data.get("at"),
                "erased_by": data.get("actor"),
            }
        )
    except ValidationError as error:
        _invalid(event, _reason(error))
    id_ = str(uuid.uuid5(_ERASED_NAMESPACE, event.event_id))
    headers, value = encode_binary(
        id=id_,
        source=source,
        type=CUSTOMER_ERASED,
        subject=event.stream_id,
        time=erased.erased_at,
        data=erased.model_dump(mode="json"),
    )
    messages.append(OutgoingMessage(topic, event.stream_id.encode(), headers, value, id_))
    return messages


class TrendData(WireModel):
    """Data of a recovery.rootcause.trend_detected CloudEvent: recently resolved cases share a root cause."""

    tag: NonEmptyStr = Field(description="The root-cause tag; the Kafka record key and subject.")
    count: int = Field(ge=1, description="Cases resolved with this tag within the window.")
    window_days: int = Field(ge=1, description="The trailing window, in days.")
    case_ids: list[str] = Field(description="Those cases.")
    detected_at: UtcTime = Field(description="When the threshold was crossed, RFC 3339 in UTC.")


TREND_STORED: Final = "rootcause.trend_detected"
TREND_TYPE: Final = "recovery.rootcause.trend_detected"


def _trend_message(event: LoggedEvent, topic: str, source: str) -> OutgoingMessage:
    try:
        data = json.loads(event.data)
        trend = TrendData.model_validate({**data, "detected_at": data.get("at")})
    except (TypeError, ValueError, AttributeError) as error:
        _invalid(
            event, _reason(error) if isinstance(error, ValidationError) else "data is not a trend object"
        )
    headers, value = encode_binary(
        id=event.event_id,
        source=source,
        type=TREND_TYPE,
        subject=trend.tag,
        time=trend.detected_at,
        data=trend.model_dump(mode="json"),
    )
    return OutgoingMessage(topic, trend.tag.encode(), headers, value, event.event_id)


class DetectionData(WireModel):
    """Why a surge rule fired: what it asks for and what it counted."""

    rule: NonEmptyStr = Field(description="The surge rule's name in the incident policy.")
    customers: int = Field(ge=1, description="Distinct customers of the scope in the window when it crossed.")
    baseline: float | None = Field(
        description="The scope's mean distinct customers per window over the rule's baseline period before the"
        " window; null when it had no signal then (the floor alone decided)."
    )
    min_customers: int = Field(ge=1, description="The rule's floor of distinct customers.")
    baseline_multiple: float = Field(ge=0, description="The multiple of the baseline the count had to reach.")
    window_minutes: int = Field(ge=1, description="The window's length.")
    window_start: UtcTime = Field(description="The window counted is (window_start, window_end].")
    window_end: UtcTime = Field(description="The latest signal counted.")


class IncidentData(WireModel):
    """Data of a recovery.incident.* CloudEvent: an incident's life, keyed by its id."""

    incident_id: NonEmptyStr = Field(description="The incident; the Kafka record key and subject.")
    at: UtcTime = Field(description="When this happened, RFC 3339 in UTC.")
    scope: dict[str, str] = Field(
        description="What failed where: the values of the keys the rule groups by (service, region, category,"
        " kind), e.g. {\"service\": \"broadband\", \"region\": \"north-east\"}."
    )
    detection: DetectionData | None = Field(
        default=None, description="Why a rule fired; null for an incident a manager declared by hand."
    )
    declared_by: str | None = Field(
        default=None, description="The manager who declared it (or confirmed a proposal); null: the rule did."
    )
    dismissed_by: str | None = Field(default=None, description="incident.dismissed: the manager who dismissed it.")
    reason: str | None = Field(default=None, description="incident.dismissed: why it is not an incident.")


INCIDENT_STORED: Final = frozenset({"incident.proposed", "incident.declared", "incident.dismissed"})


def _incident_message(event: LoggedEvent, topic: str, source: str) -> OutgoingMessage:
    try:
        incident = IncidentData.model_validate_json(event.data)
    except ValidationError as error:
        _invalid(event, _reason(error))
    headers, value = encode_binary(
        id=event.event_id,
        source=source,
        type=f"recovery.{event.type}",
        subject=incident.incident_id,
        time=incident.at,
        data=incident.model_dump(mode="json"),
    )
    return OutgoingMessage(topic, incident.incident_id.encode(), headers, value, event.event_id)


_TO_BILLING: Final = frozenset({"case.compensation_requested", "case.compensation_approved"})


def _goes_to_billing(stored_type: str, data: dict[str, Any]) -> bool:
    """A request within limits goes at once; one that waited goes when it is approved."""
    if stored_type == "case.compensation_requested":
        return not data.get("needs_approval")
    return stored_type == "case.compensation_approved"


def _plain_amount(amount: Any) -> str:
    """Plain notation, as billing's schema wants (an amount stored as 1E+1 goes out as 10); anything else as it is."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return format(value, "f") if value.is_finite() and -18 < value.adjusted() < 18 else str(amount)


def _compensation_message(
    event: LoggedEvent, data: dict[str, Any], topic: str, source: str
) -> OutgoingMessage:
    fields = {
        name: data.get(name)
        for name in ("request_id", "case_id", "customer_id", "kind", "currency", "reason")
    }
    try:
        request = CompensationRequestData.model_validate(
            {**fields, "amount": _plain_amount(data.get("amount")), "approved_by": data.get("actor")}
        )
    except ValidationError as error:
        _invalid(event, _reason(error))
    id_ = compensation_event_id(request.request_id)
    headers, value = encode_binary(
        id=id_,
        source=source,
        type=COMPENSATION_REQUESTED,
        subject=request.case_id,
        time=_time(event, data.get("at"), "at"),
        data=request.model_dump(mode="json"),
    )
    return OutgoingMessage(topic, request.case_id.encode(), headers, value, id_)


_STORED_AT = re.compile(r'"at":"([0-9T:.\-]+Z)"')


def _case_message_fast(event: LoggedEvent, topic: str, source: str) -> OutgoingMessage | None:
    """The stored JSON is already the body: only the time needs reading (None: take the full path)."""
    at = _STORED_AT.search(event.data)
    if at is None:
        return None
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", outgoing_case_type(event.type).encode()),
        ("ce_subject", event.stream_id.encode()),
        ("ce_time", at.group(1).encode()),
        ("content-type", b"application/json"),
    ]
    return OutgoingMessage(topic, event.stream_id.encode(), headers, event.data.encode(), event.event_id)


def _case_message(event: LoggedEvent, data: dict[str, Any], topic: str, source: str) -> OutgoingMessage:
    case_id = data["case_id"]
    at = _time(event, data.get("at"), "at")
    headers, value = encode_binary(
        id=event.event_id,
        source=source,
        type=outgoing_case_type(event.type),
        subject=case_id,
        time=at,
        data=data,
    )
    return OutgoingMessage(topic, case_id.encode(), headers, value, event.event_id)


def _sla_message(
    event: LoggedEvent, data: dict[str, Any], topic: str, source: str, type_: str, kind: TimerKind
) -> OutgoingMessage:
    fields: dict[str, Any] = {name: data[name] for name in _SLA_FIELDS if name in data}
    if "at" in data:
        fields["fired_at"] = data["at"]
    try:
        sla = SlaEventData.model_validate(fields)
    except ValidationError as error:
        _invalid(event, _reason(error))
    id_ = sla_event_id(sla.case_id, sla.sla, kind, sla.deadline)
    headers, value = encode_binary(
        id=id_,
        source=source,
        type=type_,
        subject=sla.case_id,
        time=sla.fired_at,
        data=sla.model_dump(mode="json"),
    )
    return OutgoingMessage(topic, sla.case_id.encode(), headers, value, id_)


def _parse(event: LoggedEvent) -> dict[str, Any]:
    """The stored JSON as an object whose type and case id agree with the log row."""
    try:
        data = json.loads(event.data)
    except (TypeError, ValueError, RecursionError):
        _invalid(event, "data is not valid JSON")
    if not isinstance(data, dict):
        _invalid(event, "data is not a JSON object")
    if data.get("type") != event.type:
        _invalid(event, "data.type does not match the stored type")
    case_id = data.get("case_id")
    if not isinstance(case_id, str) or not case_id:
        _invalid(event, "data.case_id is missing or not a non-empty string")
    if case_id != event.stream_id:
        _invalid(event, "data.case_id does not match the stream id")
    return data


def _time(event: LoggedEvent, value: object, name: str) -> datetime:
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        _invalid(event, f"data.{name} {error}")


def _reason(error: ValidationError) -> str:
    """Where and why validation failed, without the input values."""
    return "; ".join(
        f"data.{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors(include_url=False, include_input=False, include_context=False)
    )


class UnpublishableEvent(ValueError):
    """A stored event whose shape the contract cannot carry: the relay parks it, its text names why (no data)."""


def _invalid(event: LoggedEvent, reason: str) -> NoReturn:
    raise UnpublishableEvent(
        f"cannot publish the stored event at position {event.position} (type {event.type!r}): {reason}"
    )
