"""What happens to a case, as events (past tense): the stored history every case state folds from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, TypeAdapter

from service.domain.severity import Severity
from service.domain.signals import Channel, SignalKind, Tier


# Events and states are frozen dataclasses: built thousands of times a second on the hot path, and
# pydantic's TypeAdapters below still give them JSON (de)serialisation and validation at the edges.
@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRef:
    """What a case remembers of a signal: never its free text."""

    source: str
    id: str
    type: SignalKind
    severity: Severity
    reasons: tuple[str, ...]
    category: str
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    case_id: str
    at: datetime  # when the decision was taken


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseOpened(_Event):
    type: Literal["case.opened"] = "case.opened"
    customer_id: str
    ordinal: int
    customer_tier: Tier
    channel: Channel | None
    severity: Severity
    signal: SignalRef
    opened_at: datetime  # the failure's time: the clocks start here
    first_response_deadline: datetime
    resolution_deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalAttached(_Event):
    type: Literal["case.signal_attached"] = "case.signal_attached"
    signal: SignalRef


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseEscalated(_Event):
    type: Literal["case.escalated"] = "case.escalated"
    from_severity: Severity
    to_severity: Severity
    signal_id: str
    reasons: tuple[str, ...]
    resolution_deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseReopened(_Event):
    type: Literal["case.reopened"] = "case.reopened"
    reason: str
    signal: SignalRef | None
    severity: Severity
    resolution_deadline: datetime


class SlaKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True, slots=True, kw_only=True)
class _SlaFired(_Event):
    customer_id: str
    severity: Severity
    sla: SlaKind
    deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaWarned(_SlaFired):
    type: Literal["case.sla_warning"] = "case.sla_warning"
    timer: ClassVar[str] = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaBreached(_SlaFired):
    type: Literal["case.sla_breached"] = "case.sla_breached"
    timer: ClassVar[str] = "breach"


CaseEvent = Annotated[
    CaseOpened | SignalAttached | CaseEscalated | CaseReopened | SlaWarned | SlaBreached,
    Field(discriminator="type"),
]
CASE_EVENT: TypeAdapter[CaseEvent] = TypeAdapter(CaseEvent)
