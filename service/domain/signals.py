"""The inbound failure signal, independent of its wire format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class SignalKind(StrEnum):
    COMPLAINT = "complaint"
    NPS = "nps"
    REVIEW = "review"
    CALLBACK = "callback"
    TICKET = "ticket"


class Tier(StrEnum):
    STANDARD = "standard"
    GOLD = "gold"
    PLATINUM = "platinum"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    SOCIAL = "social"
    WEB = "web"
    IN_PERSON = "in_person"


class Category(StrEnum):
    SERVICE_DELAY = "service_delay"
    MISSED_APPOINTMENT = "missed_appointment"
    FAILED_REPAIR = "failed_repair"
    PRODUCT_DEFECT = "product_defect"
    STAFF_CONDUCT = "staff_conduct"
    BILLING_ERROR = "billing_error"
    PROPERTY_DAMAGE = "property_damage"
    SAFETY = "safety"
    COMMUNICATION = "communication"
    UNMET_EXPECTATION = "unmet_expectation"
    OTHER = "other"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One customer failure signal; kind-specific fields are None where they do not apply.

    `text` is the customer's free text whatever the kind calls it (complaint text, NPS comment,
    review text, ticket text, callback reason). It is never logged. A plain dataclass: the wire
    layer validated every field before building one.
    """

    source: str
    id: str
    kind: SignalKind
    occurred_at: datetime  # the CloudEvents `time`: when the failure was signalled (UTC)
    received_at: datetime  # when we consumed it (UTC)
    customer_id: str
    customer_tier: Tier = Tier.STANDARD
    job_id: str | None = None
    channel: Channel | None = None
    amount_at_stake: Money | None = None
    text: str | None = None
    category: Category | None = None
    score: int | None = None  # nps 0-10
    rating: int | None = None  # review 1-5
    platform: str | None = None
    url: str | None = None
    original_job_id: str | None = None  # callback
    days_since_visit: int | None = None  # callback
    ticket_id: str | None = None
    priority: TicketPriority | None = None
    escalated: bool = False
    service: str | None = None  # what failed (product, service line, site): incidents group by it
    region: str | None = None  # where it failed
    # W3C Trace Context of the signal's creation (the CloudEvents distributed-tracing extension), already
    # validated: the events the signal causes carry the traceparent on, so its trace continues past us.
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key of a signal: (source, id)."""
        return (self.source, self.id)
