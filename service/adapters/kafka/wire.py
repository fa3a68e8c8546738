"""Pydantic wire models of inbound signal CloudEvents; the source of schemas/ and the AsyncAPI document."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from service.domain.bounds import MAX_ID_LENGTH, NO_CONTROL_CHARACTERS
from service.domain.money import MAX_AMOUNT, minor_units
from service.domain.personal import CUSTOMER_ID, PERSONAL_TEXT
from service.domain.signals import Category, Channel, Money, SignalKind, TicketPriority, Tier
from service.tracing import (
    TRACEPARENT_LENGTH,
    TRACEPARENT_PATTERN,
    TRACESTATE_MAX_LENGTH,
    valid_traceparent,
    valid_tracestate,
)

SPECVERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<clock>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<fraction>\.[0-9]+)?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_TIME_ERROR = "must be an RFC 3339 timestamp with an offset, e.g. 2024-05-01T12:00:00Z"


def parse_rfc3339(value: object) -> datetime:
    """Parse an RFC 3339 timestamp that carries an offset and return it in UTC; ValueError otherwise."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(_TIME_ERROR)
    fraction = (match["fraction"] or "")[:7]  # the dot and at most microseconds
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['clock']}{fraction}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(_TIME_ERROR) from None


Rfc3339Time = Annotated[
    datetime,
    PlainValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
StrictInt = Annotated[int, Field(strict=True)]
NonEmptyStr = Annotated[str, Field(min_length=1)]

# --- the bounds of every inbound field (README, "Bounds"); outside them a record goes to the dead-letter topic
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
"""Signal times lie in [EARLIEST_TIME, LATEST_TIME): deadlines and windows computed from them stay representable."""
MAX_TEXT_LENGTH = 100_000
"""Customer free text, at most; RECOVERY_MAX_TEXT_LENGTH may lower it (default 20,000)."""
MAX_SHORT_TEXT_LENGTH = 2_048
"""Short descriptive fields: platform, url, job ids, ticket ids."""


def parse_signal_time(value: object) -> datetime:
    """An RFC 3339 time within the accepted calendar range; `time_out_of_range` otherwise."""
    time = parse_rfc3339(value)
    if not EARLIEST_TIME <= time < LATEST_TIME:
        raise PydanticCustomError(
            "time_out_of_range",
            "time_out_of_range: must be from {earliest} up to {latest}",
            {"earliest": "1970-01-01T00:00:00Z", "latest": "2100-01-01T00:00:00Z"},
        )
    return time


SignalTime = Annotated[
    datetime,
    PlainValidator(parse_signal_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": RFC3339_PATTERN,
            "description": "From 1970-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z.",
        }
    ),
]
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS)
]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT_LENGTH)]
ShortIdentifier = Annotated[
    str, Field(min_length=1, max_length=MAX_SHORT_TEXT_LENGTH, pattern=NO_CONTROL_CHARACTERS)
]
FreeText = Annotated[str, Field(max_length=MAX_TEXT_LENGTH), PERSONAL_TEXT]
"""The customer's words: personal data, marked as such in the schemas (x-personal-data, x-free-text)."""
# Trace context is read leniently: a value that is not valid W3C Trace Context reads as absent, so it never
# costs a signal its case (the schema states the valid form; the codec drops anything else).
Traceparent = Annotated[
    str | None,
    PlainValidator(valid_traceparent),
    WithJsonSchema({"type": "string", "pattern": TRACEPARENT_PATTERN, "maxLength": TRACEPARENT_LENGTH}),
]
Tracestate = Annotated[
    str | None,
    PlainValidator(valid_tracestate),
    WithJsonSchema({"type": "string", "maxLength": TRACESTATE_MAX_LENGTH}),
]


class WireModel(BaseModel):
    """Base of the wire models: immutable, unknown fields ignored (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class MoneyData(WireModel):
    """An amount of money; the amount is a decimal string so no precision is lost in JSON."""

    amount: str = Field(
        pattern=r"^[0-9]{1,10}(\.[0-9]{1,3})?$",
        description='Non-negative decimal amount as a string in plain notation, e.g. "120.50": at most'
        " 1,000,000,000 and no more decimals than the currency's ISO 4217 minor unit (EUR 2, JPY 0, KWD 3).",
        examples=["120.50"],
    )
    currency: str = Field(
        pattern=r"^[A-Z]{3}$",
        description="A current ISO 4217 currency code with a minor unit, e.g. EUR.",
        examples=["EUR"],
    )

    @model_validator(mode="after")
    def _within_the_currency(self) -> MoneyData:
        places = minor_units().get(self.currency)
        if places is None:
            raise ValueError("currency: not a current ISO 4217 currency code")
        amount = Decimal(self.amount)
        if amount > MAX_AMOUNT:
            raise ValueError("amount: more than 1000000000")
        if amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise ValueError(f"amount: {self.currency} amounts have at most {places} decimals")
        return self

    def to_money(self) -> Money:
        """The domain value of this amount."""
        return Money(amount=Decimal(self.amount), currency=self.currency)


class CommonSignalData(WireModel):
    """The data fields every signal kind carries."""

    TEXT_FIELD: ClassVar[str | None] = None  # the kind's customer free-text field, mapped to Signal.text

    customer_id: Annotated[Identifier, CUSTOMER_ID] = Field(
        description="The customer the signal is about; the Kafka record key (personal data)."
    )
    customer_tier: Tier = Field(default=Tier.STANDARD, description="The customer's service tier.")
    job_id: ShortIdentifier | None = Field(
        default=None, description="The job (visit, order) the signal is about, if any."
    )
    channel: Channel | None = Field(
        default=None,
        description="Where the customer raised the signal; it sets the first-response window. Absent: the"
        " email window applies (4 h by default).",
    )
    amount_at_stake: MoneyData | None = Field(
        default=None, description="Money at risk with this customer because of the failure."
    )
    service: Identifier | None = Field(
        default=None,
        description="What failed: the product, service line or site (e.g. broadband, boiler-servicing). Incidents"
        " group signals by it: many customers of one service and region within minutes is an outage.",
        examples=["broadband"],
    )
    region: Identifier | None = Field(
        default=None,
        description="Where it failed: the region, area or site the customer is served from (e.g. north-east).",
        examples=["north-east"],
    )

    def signal_fields(self) -> dict[str, Any]:
        """The domain Signal fields carried by this data (free text mapped to `text`)."""
        fields = dict(self.__dict__)  # the validated field values, as they are
        if self.TEXT_FIELD is not None:
            fields["text"] = fields.pop(self.TEXT_FIELD)
        fields["amount_at_stake"] = self.amount_at_stake.to_money() if self.amount_at_stake else None
        return fields


class ComplaintData(CommonSignalData):
    """Data of a recovery.signal.complaint event: a customer complaint."""

    TEXT_FIELD: ClassVar[str | None] = "text"

    text: FreeText = Field(min_length=1, description="The customer's complaint in their own words (never logged).")
    category: Category | None = Field(default=None, description="The failure category, if already known.")


class NpsData(CommonSignalData):
    """Data of a recovery.signal.nps event: a Net Promoter Score survey answer."""

    TEXT_FIELD: ClassVar[str | None] = "comment"

    score: StrictInt = Field(ge=0, le=10, description="The NPS score, an integer from 0 to 10.")
    comment: FreeText | None = Field(default=None, description="The customer's free-text comment (never logged).")


class ReviewData(CommonSignalData):
    """Data of a recovery.signal.review event: a public or internal review."""

    TEXT_FIELD: ClassVar[str | None] = "text"

    rating: StrictInt = Field(ge=1, le=5, description="The star rating, an integer from 1 to 5.")
    platform: ShortText | None = Field(default=None, description="Where the review was posted, e.g. google.")
    text: FreeText | None = Field(default=None, description="The review text (never logged).")
    url: ShortText | None = Field(default=None, description="Link to the review.")


class CallbackData(CommonSignalData):
    """Data of a recovery.signal.callback event: the customer needed a repeat visit."""

    TEXT_FIELD: ClassVar[str | None] = "reason"

    original_job_id: ShortIdentifier = Field(description="The job that had to be redone.")
    reason: FreeText | None = Field(
        default=None, description="Why a callback was needed, free text (never logged)."
    )
    days_since_visit: StrictInt | None = Field(
        default=None, ge=0, description="Whole days between the original visit and the callback."
    )


class TicketData(CommonSignalData):
    """Data of a recovery.signal.ticket event: a support ticket."""

    TEXT_FIELD: ClassVar[str | None] = "text"

    ticket_id: ShortIdentifier = Field(description="The ticket's id in the support system.")
    priority: TicketPriority | None = Field(default=None, description="The ticket's priority.")
    escalated: bool = Field(default=False, strict=True, description="Whether the ticket has been escalated.")
    text: FreeText | None = Field(default=None, description="The ticket's description, free text (never logged).")


class CloudEventAttributes(WireModel):
    """The CloudEvents 1.0 context attributes this service reads; of the extension attributes, only the
    distributed-tracing extension's traceparent and tracestate are read, and every other is ignored."""

    specversion: Literal["1.0"] = Field(description="The CloudEvents specification version, always 1.0.")
    id: Identifier = Field(description="Unique per source; (source, id) is the idempotency key.")
    source: Identifier = Field(description="URI-reference of the producing system, e.g. /crm/complaints.")
    type: ShortText = Field(min_length=1, description="The event type, e.g. recovery.signal.complaint.")
    time: SignalTime = Field(
        description="When the signal occurred: RFC 3339 with an offset (kept in UTC). The case's clocks start"
        " here, unless it is more than RECOVERY_CLOCK_SKEW (5 min) ahead of arrival or older than"
        " RECOVERY_MAX_SIGNAL_AGE (30 days): then they start at arrival, the signal keeps this time and its"
        " reasons say clock:future_time or clock:too_old."
    )
    subject: Identifier | None = Field(
        default=None, description="The customer id; optional, but if present it must equal data.customer_id."
    )
    datacontenttype: ShortText | None = Field(
        default=None, description="Media type of data; application/json when present."
    )
    dataschema: ShortText | None = Field(default=None, description="URI of the schema data adheres to.")
    traceparent: Traceparent = Field(
        default=None,
        description="CloudEvents distributed-tracing extension: the W3C Trace Context traceparent of the event's"
        " creation (version 00, lowercase hex, 55 characters, e.g."
        " 00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-01). The events the signal causes carry it on, as"
        " the ce_traceparent of what the service publishes. A value that is not a valid traceparent is ignored"
        " (the signal is accepted without it), never a reason to dead-letter.",
    )
    tracestate: Tracestate = Field(
        default=None,
        description="CloudEvents distributed-tracing extension: the W3C Trace Context tracestate that goes with"
        " traceparent, at most 512 characters and 32 members. It is used on this service's spans only, not"
        " stored or published; an invalid one is ignored.",
    )


DataT = TypeVar("DataT")


class StructuredCloudEvent(CloudEventAttributes, Generic[DataT]):
    """A CloudEvent 1.0 in structured content mode (JSON event format): attributes plus data."""

    data: DataT = Field(description="The event payload.")


DATA_MODELS: dict[SignalKind, type[CommonSignalData]] = {
    SignalKind.COMPLAINT: ComplaintData,
    SignalKind.NPS: NpsData,
    SignalKind.REVIEW: ReviewData,
    SignalKind.CALLBACK: CallbackData,
    SignalKind.TICKET: TicketData,
}
EVENT_MODELS: dict[SignalKind, type[StructuredCloudEvent[Any]]] = {
    SignalKind.COMPLAINT: StructuredCloudEvent[ComplaintData],
    SignalKind.NPS: StructuredCloudEvent[NpsData],
    SignalKind.REVIEW: StructuredCloudEvent[ReviewData],
    SignalKind.CALLBACK: StructuredCloudEvent[CallbackData],
    SignalKind.TICKET: StructuredCloudEvent[TicketData],
}
SIGNAL_TYPES: dict[str, tuple[SignalKind, type[CommonSignalData]]] = {
    f"recovery.signal.{kind.value}": (kind, model) for kind, model in DATA_MODELS.items()
}
TYPE_BY_KIND: dict[SignalKind, str] = {kind: type_ for type_, (kind, _) in SIGNAL_TYPES.items()}
