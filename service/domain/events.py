"""What happens to a case, as events (past tense): the stored history every case state folds from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, TypeAdapter

from service.domain.personal import CustomerId, PersonalText
from service.domain.severity import Severity
from service.domain.signals import Channel, Money, SignalKind, Tier
from service.domain.sla import PauseReason, SlaClock
from service.domain.sla import SlaKind as SlaKind  # re-exported: the two built-in clock names


# Events and states are frozen dataclasses: built thousands of times a second on the hot path, and
# pydantic's TypeAdapters below still give them JSON (de)serialisation and validation at the edges.
@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRef:
    """What a case remembers of a signal, the customer's words (`text`, personal data) included."""

    source: str
    id: str
    type: SignalKind
    severity: Severity
    reasons: tuple[str, ...]
    category: str
    occurred_at: datetime
    received_at: datetime
    amount_at_stake: Money | None = None
    text: PersonalText | None = None  # the customer's words; None: it had none, or was stored before they were kept


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    case_id: str
    at: datetime  # when the decision was taken


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseOpened(_Event):
    type: Literal["case.opened"] = "case.opened"
    customer_id: CustomerId
    ordinal: int
    customer_tier: Tier
    channel: Channel | None
    severity: Severity
    signal: SignalRef | None  # None when staff opened it by hand (an internal escalation)
    opened_at: datetime  # the clocks start here: the signal's time, or its arrival when a clock rule applied
    first_response_deadline: datetime
    resolution_deadline: datetime
    opened_by: str | None = None
    reason: PersonalText | None = None
    # every clock it starts; None: stored before clocks were recorded
    clocks: tuple[SlaClock, ...] | None = None
    summary: PersonalText | None = None  # the opening signal's first sentence (summary.summary_of)
    amount_at_stake: Money | None = None  # what staff opening it by hand stated (a signal states its own)


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
    # the clocks it tightened; None: stored before clocks were recorded
    clocks: tuple[SlaClock, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseReopened(_Event):
    type: Literal["case.reopened"] = "case.reopened"
    actor: str | None = None  # None when a signal reopened it
    reason: PersonalText
    signal: SignalRef | None
    severity: Severity
    resolution_deadline: datetime
    # the clocks it restarts; None: stored before clocks were recorded
    clocks: tuple[SlaClock, ...] | None = None


class StepKind(StrEnum):
    CALL_CUSTOMER = "call_customer"
    EMAIL_CUSTOMER = "email_customer"
    SCHEDULE_VISIT = "schedule_visit"
    ISSUE_REFUND = "issue_refund"
    ISSUE_CREDIT = "issue_credit"
    ESCALATE_TO_MANAGER = "escalate_to_manager"
    WRITE_APOLOGY_LETTER = "write_apology_letter"
    PHOTOS_OF_CORRECTION = "photos_of_correction"
    INTERNAL_TRAINING_NOTE = "internal_training_note"
    ROOT_CAUSE_ANALYSIS = "root_cause_analysis"


class StepOutcome(StrEnum):
    COMPLETED = "completed"
    SKIPPED = "skipped"
    FAILED = "failed"


class ResolutionType(StrEnum):
    APOLOGY_ONLY = "apology_only"
    MAKE_GOOD_SERVICE = "make_good_service"
    PARTIAL_REFUND = "partial_refund"
    FULL_REFUND = "full_refund"
    COMPED_SERVICE = "comped_service"
    SERVICE_CREDIT = "service_credit"
    WRITTEN_LETTER = "written_letter"
    COMBINED = "combined"
    CUSTOMER_DECLINED_ALL = "customer_declined_all"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Command(_Event):
    actor: str  # who did it: recorded on every event a person causes


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseAssigned(_Command):
    type: Literal["case.assigned"] = "case.assigned"
    owner: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseAcknowledged(_Command):
    type: Literal["case.acknowledged"] = "case.acknowledged"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepAdded(_Command):
    type: Literal["case.step_added"] = "case.step_added"
    step_id: str
    kind: StepKind


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecorded(_Command):
    type: Literal["case.step_recorded"] = "case.step_recorded"
    step_id: str
    outcome: StepOutcome
    notes: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResolved(_Command):
    type: Literal["case.resolved"] = "case.resolved"
    resolution_type: ResolutionType
    root_cause: str
    prevention_action: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUpRecorded(_Command):
    type: Literal["case.follow_up_recorded"] = "case.follow_up_recorded"
    satisfied: bool
    notes: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAdded(_Command):
    """An internal note by staff: kept on the case's history, never published downstream."""

    type: Literal["case.note_added"] = "case.note_added"
    note: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryEdited(_Command):
    """Staff rewrote the case's summary (summary.decide_edit_summary)."""

    type: Literal["case.summary_edited"] = "case.summary_edited"
    summary: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUpDue(_Event):
    """The customer should now be asked whether the recovery worked."""

    type: Literal["case.followup_due"] = "case.followup_due"
    customer_id: CustomerId
    due_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseClosed(_Command):
    type: Literal["case.closed"] = "case.closed"


class CompensationKind(StrEnum):
    REFUND = "refund"
    CREDIT = "credit"
    COMPED_SERVICE = "comped_service"


@dataclass(frozen=True, slots=True, kw_only=True)
class _CompensationRequest(_Command):
    request_id: str  # billing's idempotency key
    customer_id: CustomerId
    kind: CompensationKind
    amount: Decimal
    currency: str
    reason: PersonalText


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationRequested(_CompensationRequest):
    """Asked for by staff; goes to billing at once, or after approval when `needs_approval` names why."""

    type: Literal["case.compensation_requested"] = "case.compensation_requested"
    needs_approval: tuple[str, ...]
    # above a limit across cases (the customer's in the window, the actor's in a day): only an owner approves
    needs_owner: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationApproved(_CompensationRequest):
    """A manager or owner approved a waiting request: now it goes to billing (the request repeated in full)."""

    type: Literal["case.compensation_approved"] = "case.compensation_approved"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationSettled(_Event):
    type: Literal["case.compensation_settled"] = "case.compensation_settled"
    request_id: str
    reference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationFailed(_Event):
    type: Literal["case.compensation_failed"] = "case.compensation_failed"
    request_id: str
    reason: PersonalText  # billing's words: free text, so treated as personal


@dataclass(frozen=True, slots=True, kw_only=True)
class CasePaused(_Command):
    """Staff paused the case: clocks that honour pauses stop until it resumes (by `resumes_at` at the latest)."""

    type: Literal["case.paused"] = "case.paused"
    reason: PauseReason
    until: datetime | None = None  # the end staff asked for
    resumes_at: datetime  # the earlier of `until` and the reason's budget for the case running out


class ResumeCause(StrEnum):
    STAFF = "staff"
    BUDGET_SPENT = "budget_spent"
    UNTIL_REACHED = "until_reached"
    CUSTOMER_SIGNAL = "customer_signal"  # the customer wrote while the case awaited them


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResumed(_Event):
    """The pause ended: the pausable clocks that were running got back the open time it took."""

    type: Literal["case.resumed"] = "case.resumed"
    actor: str | None = None  # None when a timer or the customer's signal ended it
    cause: ResumeCause
    clocks: tuple[SlaClock, ...] = ()  # the clocks it moved, with their new deadlines and warning points


@dataclass(frozen=True, slots=True, kw_only=True)
class _SlaFired(_Event):
    customer_id: CustomerId
    severity: Severity
    sla: str  # the clock's name: a SlaKind, or a named clock from the SLA policy file
    deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaWarned(_SlaFired):
    type: Literal["case.sla_warning"] = "case.sla_warning"
    timer: ClassVar[str] = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaBreached(_SlaFired):
    type: Literal["case.sla_breached"] = "case.sla_breached"
    timer: ClassVar[str] = "breach"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockCorrection:
    """One clock a new SLA policy moved: as it ran before and as it runs now."""

    name: str
    before: SlaClock | None  # None: the new policy adds this named clock, from the case's opening
    after: SlaClock | None  # None: the new policy no longer selects this named clock: it stops


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlinesCorrected(_Event):
    """A new version of the SLA policy moved some of an open case's clocks. A warning or breach whose new
    instant had passed at `at` counts as fired: a correction never alerts for what passed before it."""

    type: Literal["case.deadlines_corrected"] = "case.deadlines_corrected"
    from_version: str | None  # the version applied before (None: none was recorded)
    to_version: str | None
    corrections: tuple[ClockCorrection, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalDataErased(_Command):
    """The customer's personal data is erased from the case (their right to erasure): wherever the service
    stores it, the customer id is now `pseudonym` and every personal text reads [erased]; the counts stay.

    The event on the customer's latest case also carries what other services need to erase theirs: the
    `customer_id` and every one of their `case_ids`, published as recovery.customer.erased. The store keeps
    that customer id only until the relay has published it (adapters/postgres/erasure.py)."""

    type: Literal["case.personal_data_erased"] = "case.personal_data_erased"
    pseudonym: str
    customer_id: CustomerId | None = None
    case_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentLinked(_Event):
    """The case is part of an incident: its signal fell in a declared incident's scope, or its customer was one
    of those whose signals made the incident cross its rule. A case links to one incident at most."""

    type: Literal["case.incident_linked"] = "case.incident_linked"
    incident_id: str
    actor: str | None = None  # a manager who linked it by hand; None: the incident's detection did


CaseEvent = Annotated[
    CaseOpened
    | SignalAttached
    | CaseEscalated
    | CaseReopened
    | SlaWarned
    | SlaBreached
    | DeadlinesCorrected
    | CaseAssigned
    | CaseAcknowledged
    | StepAdded
    | StepRecorded
    | CaseResolved
    | FollowUpRecorded
    | NoteAdded
    | SummaryEdited
    | FollowUpDue
    | CaseClosed
    | CompensationRequested
    | CompensationApproved
    | CompensationSettled
    | CompensationFailed
    | CasePaused
    | CaseResumed
    | PersonalDataErased
    | IncidentLinked,
    Field(discriminator="type"),
]
CASE_EVENT: TypeAdapter[CaseEvent] = TypeAdapter(CaseEvent)
