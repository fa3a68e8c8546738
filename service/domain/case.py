"""The recovery case: its state, its events (past tense), the decisions and evolve()."""

from __future__ import annotations

import hashlib
import hmac
import operator
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import TypeAdapter

from service.domain.clock_calendars import ClockCase
from service.domain.events import (
    CaseAcknowledged,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseEvent,
    CaseOpened,
    CasePaused,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    CompensationApproved,
    CompensationFailed,
    CompensationKind,
    CompensationRequested,
    CompensationSettled,
    DeadlinesCorrected,
    FollowUpDue,
    IncidentLinked,
    PersonalDataErased,
    ResolutionType,
    ResumeCause,
    SignalAttached,
    SignalRef,
    SlaBreached,
    SlaKind,
    SlaWarned,
    StepAdded,
    StepKind,
    StepOutcome,
    StepRecorded,
    SummaryEdited,
)
from service.domain.personal import ERASED_TEXT, CustomerId, PersonalText, map_personal
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Money, Signal, SignalKind, Tier
from service.domain.sla import (
    BUILT_IN_CLOCKS,
    FIRST_RESPONSE,
    RESOLUTION,
    PauseReason,
    PauseSpan,
    SlaClock,
    SlaPolicy,
    default_clock,
    is_default,
    resumed_clock,
)
from service.domain.summary import summary_of


class CaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    step_id: str
    kind: StepKind
    added_by: str
    added_at: datetime
    outcome: StepOutcome | None = None
    notes: PersonalText | None = None
    recorded_by: str | None = None
    recorded_at: datetime | None = None


class CompensationStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    REQUESTED = "requested"
    SETTLED = "settled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Compensation:
    request_id: str
    kind: CompensationKind
    amount: Decimal
    currency: str
    reason: PersonalText
    requested_by: str
    requested_at: datetime
    status: CompensationStatus
    needs_approval: tuple[str, ...] = ()
    needs_owner: bool = False  # it waits for an owner: a manager may not approve it
    approved_by: str | None = None
    reference: str | None = None
    failure: PersonalText | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    resolution_type: ResolutionType
    root_cause: str
    prevention_action: PersonalText
    resolved_by: str
    resolved_at: datetime


# A completed contact with the customer is the first response: it stops that clock.
CONTACT_STEPS = frozenset({StepKind.CALL_CUSTOMER, StepKind.EMAIL_CUSTOMER})


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseState:
    case_id: str
    customer_id: CustomerId
    ordinal: int
    status: CaseStatus
    severity: Severity
    customer_tier: Tier
    channel: Channel | None
    opened_at: datetime
    received_at: datetime
    first_response_deadline: datetime
    resolution_deadline: datetime
    resolution_clock_started_at: datetime
    owner: str | None = None
    signal_count: int = 0  # the signals themselves are in the events (and the signal log read model)
    reopen_count: int = 0
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None  # the first recorded contact stops the first-response clock
    sla_fired: tuple[str, ...] = ()  # timer keys already fired: a warning or breach fires once per deadline
    steps: tuple[Step, ...] = ()
    resolution: Resolution | None = None
    amount_at_stake: Money | None = None  # the largest value at stake any signal named, in one currency
    compensations: tuple[Compensation, ...] = ()
    version: int = 0
    kind: SignalKind | None = None  # of the opening signal (None: opened by hand, or stored before this)
    category: Category | None = None
    clocks: tuple[SlaClock, ...] = ()  # every SLA clock; () in snapshots stored before clocks: see clocks_of
    pauses: tuple[PauseSpan, ...] = ()  # every pause, the last one open while the case is paused
    summary: PersonalText | None = None  # what went wrong in a line: the opening signal's first sentence, or staff's
    opened_by_hand: bool = False  # by staff with no signal (False for cases opened before clocks: _opened)
    erased_at: datetime | None = None  # when the customer's personal data was erased (customer_id: a pseudonym)
    incident_id: str | None = None  # the incident the case is part of (domain/incidents.py)


_STATE_FIELDS: Final = tuple(f.name for f in fields(CaseState))
_STATE_INDEX: Final = {name: i for i, name in enumerate(_STATE_FIELDS)}
_STATE_VALUES: Final = operator.attrgetter(*_STATE_FIELDS)  # every field's value in one call
_STATE_SLOTS: Final = tuple(getattr(CaseState, name).__set__ for name in _STATE_FIELDS)


def changed(state: CaseState, /, **changes: Any) -> CaseState:
    """A copy of the state with those fields changed, as `dataclasses.replace` gives, at about 40 % of its cost
    (it copies the slots instead of rebuilding the object through `__init__` with keywords): every event of
    every signal makes one state."""
    values = list(_STATE_VALUES(state))
    for name, value in changes.items():
        index = _STATE_INDEX.get(name)
        if index is None:
            raise TypeError(f"CaseState has no field {name!r}")
        values[index] = value
    copy = object.__new__(CaseState)
    for set_slot, value in zip(_STATE_SLOTS, values, strict=True):
        set_slot(copy, value)
    return copy


def paused(state: CaseState) -> PauseSpan | None:
    """The pause the case is in now, or None."""
    last = state.pauses[-1] if state.pauses else None
    return last if last is not None and last.ended_at is None else None


def resumed(
    state: CaseState, sla: SlaPolicy, cause: ResumeCause, actor: str | None, now: datetime
) -> CaseResumed:
    """The end of the case's pause: each pausable running clock gets back the open time the pause took."""
    pause = paused(state)
    assert pause is not None, "only a paused case resumes"
    moved = []
    for clock in clocks_of(state):
        fixed = replace(clock, warning_at=sla.warning_of(clock))  # a clock stored without one gets it here
        after = resumed_clock(fixed, sla.calendar(clock.calendar), pause, now)
        if after.deadline != clock.deadline:
            moved.append(after)
    return CaseResumed(case_id=state.case_id, at=now, actor=actor, cause=cause, clocks=tuple(moved))


def _ended_by_customer(state: CaseState, sla: SlaPolicy, now: datetime) -> list[CaseEvent]:
    """A case awaiting the customer resumes when the customer's next signal lands on it."""
    pause = paused(state)
    if pause is None or pause.reason is not PauseReason.AWAITING_CUSTOMER:
        return []
    return [resumed(state, sla, ResumeCause.CUSTOMER_SIGNAL, None, now)]


def clocks_of(state: CaseState) -> tuple[SlaClock, ...]:
    """The case's clocks: the two built-in ones, then the named ones.

    The built-in clocks' start, deadline and stop are the case's own fields (acknowledged, resolved); a record
    in `state.clocks` adds what the fields do not say (a calendar, warning point, policy version, an escalated
    window). Without one the clock is the default 24x7 one the fields give (`default_clock`): the state keeps
    no record that says nothing more, so a case without an SLA policy file stores none.
    """
    first_response = _built_in(
        state, FIRST_RESPONSE, state.opened_at, state.first_response_deadline, state.acknowledged_at
    )
    named = (c for c in state.clocks if c.name not in BUILT_IN_CLOCKS)
    return (first_response, _resolution_clock(state), *named)


def _resolution_clock(state: CaseState) -> SlaClock:
    return _built_in(
        state, RESOLUTION, state.resolution_clock_started_at, state.resolution_deadline, state.resolved_at
    )


def running_clocks(state: CaseState) -> tuple[SlaClock, ...]:
    """The clocks that run now: an open case's clocks not stopped, less those its pause holds."""
    if state.status is not CaseStatus.OPEN:
        return ()
    pause = paused(state)
    return tuple(
        c for c in clocks_of(state) if c.stopped_at is None and (pause is None or not pause.holds(c))
    )


def next_deadline(state: CaseState) -> datetime | None:
    """The soonest deadline of a running clock, the one the queue orders by; None when no clock runs.

    Every saved case asks this, so a case not paused reads its deadlines without building its clocks
    (running_clocks' rule, unrolled: tests/unit/test_next_deadline.py holds the two to one answer)."""
    if state.status is not CaseStatus.OPEN:
        return None
    if paused(state) is not None:
        return min((c.deadline for c in running_clocks(state)), default=None)
    soonest = state.resolution_deadline
    if state.acknowledged_at is None and state.first_response_deadline < soonest:
        soonest = state.first_response_deadline
    for clock in state.clocks:
        if clock.stopped_at is None and clock.deadline < soonest and clock.name not in BUILT_IN_CLOCKS:
            soonest = clock.deadline
    return soonest


def _built_in(
    state: CaseState, name: str, started_at: datetime, deadline: datetime, stopped_at: datetime | None
) -> SlaClock:
    stored = next((c for c in state.clocks if c.name == name), None)
    if stored is None or (stored.started_at, stored.deadline) != (started_at, deadline):
        return default_clock(name, started_at, deadline, stopped_at)
    return stored if stored.stopped_at == stopped_at else replace(stored, stopped_at=stopped_at)


def clock_case(state: CaseState, severity: Severity | None = None) -> ClockCase:
    """What the SLA policy selects a case's clocks and calendars by (at another severity when given)."""
    return ClockCase(
        severity=severity or state.severity,
        channel=state.channel,
        kind=state.kind,
        category=state.category,
        tier=state.customer_tier,
    )


def _replaced(clocks: tuple[SlaClock, ...], new: tuple[SlaClock, ...]) -> tuple[SlaClock, ...]:
    """The records with the new ones in place of those of the same name, less the default ones (clocks_of)."""
    by_name = {c.name: c for c in new}
    kept = tuple(by_name.pop(c.name, c) for c in clocks)
    return _recorded((*kept, *by_name.values()))


def _recorded(clocks: tuple[SlaClock, ...] | None) -> tuple[SlaClock, ...]:
    """The records a case keeps: every clock but a default built-in one, which its fields give in full."""
    return tuple(c for c in clocks or () if not is_default(c))


def sla_key(sla: str, what: str, deadline: datetime) -> str:
    """A fired warning or breach is known by its SLA, what fired and the deadline it was for."""
    return f"{sla}/{what}/{deadline.isoformat()}"


@dataclass(frozen=True, slots=True)
class CaseIds:
    """How a new case gets its id: a keyed hash (HMAC-SHA-256) of the customer id, the case's ordinal and what
    opened it (the signal's source and id, or the staff member and instant), under the service's secret.

    The same opening always gives the same id, so two instances applying one signal at once collide on version
    1; two different openings for one customer collide on the one-open-case rule instead. Without the secret
    nobody can compute a customer's case ids from their customer id, and a customer who returns after an
    erasure gets new ones. Ids of cases opened by earlier releases (a uuid5 of the customer id) stay as they are:
    every lookup goes through the stored case, never through this."""

    secret: bytes = field(repr=False)

    def new(self, customer_id: str, ordinal: int, opening: str) -> str:
        message = "\x1f".join((customer_id, str(ordinal), opening)).encode()
        return str(uuid.UUID(bytes=hmac.digest(self.secret, message, hashlib.sha256)[:16]))

    def for_signal(self, signal: Signal, ordinal: int) -> str:
        return self.new(signal.customer_id, ordinal, f"signal/{signal.source}/{signal.id}")

    def by_hand(self, customer_id: str, ordinal: int, actor: str, now: datetime) -> str:
        return self.new(customer_id, ordinal, f"by-hand/{actor}/{now.isoformat()}")


def signal_ref(signal: Signal, classification: Classification) -> SignalRef:
    assert classification.severity is not None
    return SignalRef(
        source=signal.source,
        id=signal.id,
        type=signal.kind,
        severity=classification.severity,
        reasons=classification.reasons,
        category=classification.category.value,
        occurred_at=signal.occurred_at,
        received_at=signal.received_at,
        amount_at_stake=signal.amount_at_stake,
        text=signal.text,
    )


class Placement(StrEnum):
    """Where a failure signal goes: a new case, the customer's latest case, or that case reopened."""

    OPEN_NEW = "open_new"
    ATTACH = "attach"
    REOPEN = "reopen"


def placement(state: CaseState | None, signal: Signal, sla: SlaPolicy) -> Placement:
    """A signal attaches to an open case; within the reopen window after a resolution it reopens the case
    (resolved, or closed by a follow-up: the window counts from the resolution); a signal dated at or before
    that resolution is one the resolution answered, so it is recorded on the case and reopens nothing;
    otherwise it opens the customer's next case."""
    if state is None:
        return Placement.OPEN_NEW
    if state.status is CaseStatus.OPEN:
        return Placement.ATTACH
    resolved_at = state.resolved_at
    if resolved_at is None:
        return Placement.OPEN_NEW
    if signal.occurred_at <= resolved_at:
        return Placement.ATTACH
    start = sla.clock_start(signal.occurred_at, signal.received_at)
    return Placement.REOPEN if start - resolved_at <= sla.reopen_window else Placement.OPEN_NEW


def clocked(signal: Signal, classification: Classification, sla: SlaPolicy) -> Classification:
    """The classification with the clock rule that moved the signal's clocks to its arrival, if one did."""
    rule = sla.clock_rule(signal.occurred_at, signal.received_at)
    if rule is None or classification.severity is None:
        return classification
    return replace(classification, reasons=(*classification.reasons, rule))


def decide_signal(
    state: CaseState | None,
    signal: Signal,
    classification: Classification,
    sla: SlaPolicy,
    now: datetime,
    case_ids: CaseIds,
) -> list[CaseEvent]:
    """Open, attach, escalate or reopen; a non-failure decides nothing.

    Redelivered signals never get here: intake drops every (source, id) it has applied before. The
    classification carries every reason recorded on the signal, the clock rule's too (see `clocked`).
    """
    if classification.severity is None:
        return []
    ref = signal_ref(signal, classification)
    where = placement(state, signal, sla)
    if where is Placement.OPEN_NEW or state is None:
        return [_open(state, signal, ref, sla, now, case_ids)]
    if where is Placement.REOPEN:
        return [_reopen(state, ref, sla, now)]
    if state.status is not CaseStatus.OPEN:  # dated before the resolution: recorded, nothing else
        return [SignalAttached(case_id=state.case_id, at=now, signal=ref)]
    ended = _ended_by_customer(state, sla, now)
    if ended:
        return [*ended, *_attach(evolve(state, ended[0]), ref, classification, sla, now)]
    return _attach(state, ref, classification, sla, now)


def _open(
    previous: CaseState | None, signal: Signal, ref: SignalRef, sla: SlaPolicy, now: datetime, case_ids: CaseIds
) -> CaseOpened:
    start = sla.clock_start(signal.occurred_at, signal.received_at)
    ordinal = previous.ordinal + 1 if previous else 1
    case = ClockCase(
        severity=ref.severity,
        channel=signal.channel,
        kind=signal.kind,
        category=_category(ref.category),
        tier=signal.customer_tier,
    )
    first_response, resolution, *named = sla.opening_clocks(case, start)
    return CaseOpened(
        case_id=case_ids.for_signal(signal, ordinal),
        at=now,
        customer_id=signal.customer_id,
        ordinal=ordinal,
        customer_tier=signal.customer_tier,
        channel=signal.channel,
        severity=ref.severity,
        signal=ref,
        opened_at=start,
        first_response_deadline=first_response.deadline,
        resolution_deadline=resolution.deadline,
        clocks=(first_response, resolution, *named),
        summary=summary_of(signal.text),
    )


def _attach(
    state: CaseState, ref: SignalRef, classification: Classification, sla: SlaPolicy, now: datetime
) -> list[CaseEvent]:
    events: list[CaseEvent] = [SignalAttached(case_id=state.case_id, at=now, signal=ref)]
    if ref.severity > state.severity:
        start = sla.clock_start(ref.occurred_at, ref.received_at)
        current = _resolution_clock(state)
        moved = sla.tightened(current, clock_case(state, ref.severity), start)
        events.append(
            CaseEscalated(
                case_id=state.case_id,
                at=now,
                from_severity=state.severity,
                to_severity=ref.severity,
                signal_id=ref.id,
                reasons=classification.reasons,
                resolution_deadline=current.deadline if moved is None else moved.deadline,
                clocks=() if moved is None else (moved,),
            )
        )
    return events


def _reopen(state: CaseState, ref: SignalRef, sla: SlaPolicy, now: datetime) -> CaseReopened:
    severity = max(state.severity, ref.severity)
    resolution = sla.clock(RESOLUTION, clock_case(state, severity), now)
    return CaseReopened(
        case_id=state.case_id,
        at=now,
        reason="signal within reopen window",
        signal=ref,
        severity=severity,
        resolution_deadline=resolution.deadline,
        clocks=(resolution,),
    )


def evolve(state: CaseState | None, event: CaseEvent) -> CaseState:
    """Apply one event; replaying a stream is a fold of evolve."""
    if isinstance(event, CaseOpened):
        return _opened(event)
    assert state is not None, f"{event.type} before case.opened"
    version = state.version + 1
    if isinstance(event, SignalAttached):
        stake = _stake_after(state, event.signal.amount_at_stake)
        return changed(state, version=version, signal_count=state.signal_count + 1, amount_at_stake=stake)
    if isinstance(event, FollowUpDue):
        return changed(
            state,
            version=version,
            sla_fired=(*state.sla_fired, sla_key(SlaKind.RESOLUTION, "follow_up", event.due_at)),
        )
    if isinstance(event, SlaWarned | SlaBreached):
        return changed(
            state,
            version=version,
            sla_fired=(*state.sla_fired, sla_key(event.sla, event.timer, event.deadline)),
        )
    if isinstance(event, DeadlinesCorrected):
        return _corrected(changed(state, version=version), event)
    if isinstance(event, CaseEscalated):
        return changed(
            state,
            version=version,
            severity=event.to_severity,
            resolution_deadline=event.resolution_deadline,
            clocks=_replaced(state.clocks, _escalated_clocks(state, event)),
        )
    if isinstance(event, CasePaused | CaseResumed):
        return _paused_or_resumed(changed(state, version=version), event)
    if isinstance(event, PersonalDataErased):
        erased = changed(state, version=version, customer_id=event.pseudonym, erased_at=event.at)
        return map_personal(erased, lambda _: ERASED_TEXT)
    if not isinstance(event, CaseReopened):
        return _worked(changed(state, version=version), event)
    signals = state.signal_count + (event.signal is not None)
    stake = _stake_after(state, event.signal.amount_at_stake if event.signal else None)
    restarted = event.clocks or ()  # None: stored before clocks; clocks_of reads the restart from the fields
    return changed(
        state,
        version=version,
        status=CaseStatus.OPEN,
        severity=event.severity,
        signal_count=signals,
        amount_at_stake=stake,
        reopen_count=state.reopen_count + 1,
        resolved_at=None,
        resolution=None,
        resolution_deadline=event.resolution_deadline,
        resolution_clock_started_at=event.at,
        # the resolution answered the customer; snapshots stored before CaseResolved recorded that lack it
        acknowledged_at=state.acknowledged_at or state.resolved_at,
        clocks=_replaced(state.clocks, restarted),
    )


def _corrected(state: CaseState, event: DeadlinesCorrected) -> CaseState:
    """The corrected clocks replace the old ones, a clock the policy dropped stops; a warning or breach whose new
    instant had passed by the correction counts as fired, so its timer decides nothing."""
    running = {c.name: c.after for c in event.corrections if c.after is not None}
    dropped = {c.name for c in event.corrections if c.after is None}
    replaced = _replaced(state.clocks, tuple(running.values()))
    clocks = tuple(c.stopped(event.at) if c.name in dropped else c for c in replaced)
    passed = (
        sla_key(c.name, fired.timer, c.deadline)
        for c in running.values()
        for fired, due in ((SlaWarned, c.warning_at or c.deadline), (SlaBreached, c.deadline))
        if due <= event.at
    )
    first_response, resolution = running.get(FIRST_RESPONSE), running.get(RESOLUTION)
    return changed(
        state,
        clocks=clocks,
        first_response_deadline=(
            state.first_response_deadline if first_response is None else first_response.deadline
        ),
        resolution_deadline=state.resolution_deadline if resolution is None else resolution.deadline,
        sla_fired=(*state.sla_fired, *(k for k in dict.fromkeys(passed) if k not in state.sla_fired)),
    )


def _paused_or_resumed(state: CaseState, event: CasePaused | CaseResumed) -> CaseState:
    if isinstance(event, CasePaused):
        pause = PauseSpan(
            reason=event.reason, started_at=event.at, until=event.until, resumes_at=event.resumes_at
        )
        return changed(state, pauses=(*state.pauses, pause))
    before = {c.name: c.deadline for c in clocks_of(state)}
    # a warning fired for the old deadline counts as fired for the moved one: a pause never warns twice
    warned = tuple(
        sla_key(c.name, "warning", c.deadline)
        for c in event.clocks
        if sla_key(c.name, "warning", before[c.name]) in state.sla_fired
    )
    moved = {c.name: c.deadline for c in event.clocks}
    return changed(
        state,
        pauses=_ended(state.pauses, event.at),
        clocks=_replaced(state.clocks, event.clocks),
        first_response_deadline=moved.get(FIRST_RESPONSE, state.first_response_deadline),
        resolution_deadline=moved.get(RESOLUTION, state.resolution_deadline),
        sla_fired=(*state.sla_fired, *warned),
    )


def _ended(pauses: tuple[PauseSpan, ...], at: datetime) -> tuple[PauseSpan, ...]:
    """The open pause, if any, ends `at`."""
    if not pauses or pauses[-1].ended_at is not None:
        return pauses
    return (*pauses[:-1], replace(pauses[-1], ended_at=at))


def _escalated_clocks(state: CaseState, event: CaseEscalated) -> tuple[SlaClock, ...]:
    return event.clocks or ()  # None: stored before clocks; clocks_of reads the new deadline from the fields


def _worked(state: CaseState, event: CaseEvent) -> CaseState:
    """What staff do to a case: assign, acknowledge, steps, resolution, follow-up, closing."""
    if isinstance(event, CaseAssigned):
        return changed(state, owner=event.owner)
    if isinstance(event, CaseAcknowledged):
        return changed(state, acknowledged_at=state.acknowledged_at or event.at)
    if isinstance(event, StepAdded):
        step = Step(step_id=event.step_id, kind=event.kind, added_by=event.actor, added_at=event.at)
        return changed(state, steps=(*state.steps, step))
    if isinstance(event, StepRecorded):
        return _step_recorded(state, event)
    if isinstance(event, CaseResolved):
        resolution = Resolution(
            resolution_type=event.resolution_type,
            root_cause=event.root_cause,
            prevention_action=event.prevention_action,
            resolved_by=event.actor,
            resolved_at=event.at,
        )
        # A resolution answers the customer: it stops the first-response clock for good, reopened or not.
        acknowledged = state.acknowledged_at or event.at
        return changed(
            state,
            status=CaseStatus.RESOLVED,
            resolved_at=event.at,
            resolution=resolution,
            acknowledged_at=acknowledged,
            clocks=tuple(c.stopped(event.at) for c in state.clocks),  # named clocks stop for good
            pauses=_ended(state.pauses, event.at),
        )
    if isinstance(event, CaseClosed):
        return changed(state, status=CaseStatus.CLOSED)
    if isinstance(event, IncidentLinked):
        return changed(state, incident_id=event.incident_id)
    if isinstance(event, SummaryEdited):
        return changed(state, summary=event.summary)
    if isinstance(
        event, CompensationRequested | CompensationApproved | CompensationSettled | CompensationFailed
    ):
        return changed(state, compensations=compensations_after(state.compensations, event))
    # FollowUpRecorded: the closing or reopening event that follows it carries the change; NoteAdded: history only
    return state


def _step_recorded(state: CaseState, event: StepRecorded) -> CaseState:
    steps = tuple(
        replace(s, outcome=event.outcome, notes=event.notes, recorded_by=event.actor, recorded_at=event.at)
        if s.step_id == event.step_id
        else s
        for s in state.steps
    )
    kind = next(s.kind for s in state.steps if s.step_id == event.step_id)
    contact = event.outcome is StepOutcome.COMPLETED and kind in CONTACT_STEPS
    acknowledged = state.acknowledged_at or (event.at if contact else None)
    return changed(state, steps=steps, acknowledged_at=acknowledged)


def awaiting_approval(state: CaseState) -> bool:
    """Whether a compensation of the case waits for a manager's or an owner's approval."""
    return any(c.status is CompensationStatus.AWAITING_APPROVAL for c in state.compensations)


def case_currency(state: CaseState) -> str | None:
    """A case has one currency: its amount at stake's, or else its first compensation's (None until either)."""
    if state.amount_at_stake is not None:
        return state.amount_at_stake.currency
    return state.compensations[0].currency if state.compensations else None


def _stake_after(state: CaseState, new: Money | None) -> Money | None:
    """A stake in another currency than the case's never counts, even on a case its compensations put in one."""
    currency = case_currency(state)
    if new is not None and currency is not None and new.currency != currency:
        return state.amount_at_stake
    return larger_stake(state.amount_at_stake, new)


def larger_stake(current: Money | None, new: Money | None) -> Money | None:
    """The case keeps the largest amount at stake; one in another currency does not replace it."""
    if current is None:
        return new
    if new is None or new.currency != current.currency or new.amount <= current.amount:
        return current
    return new


def compensations_after(
    current: tuple[Compensation, ...],
    event: CompensationRequested | CompensationApproved | CompensationSettled | CompensationFailed,
) -> tuple[Compensation, ...]:
    if isinstance(event, CompensationRequested):
        status = (
            CompensationStatus.AWAITING_APPROVAL if event.needs_approval else CompensationStatus.REQUESTED
        )
        added = Compensation(
            request_id=event.request_id,
            kind=event.kind,
            amount=event.amount,
            currency=event.currency,
            reason=event.reason,
            requested_by=event.actor,
            requested_at=event.at,
            status=status,
            needs_approval=event.needs_approval,
            needs_owner=event.needs_owner,
            approved_by=None if event.needs_approval else event.actor,
        )
        return (*current, added)
    changes: dict[str, object]
    if isinstance(event, CompensationApproved):
        changes = {"status": CompensationStatus.REQUESTED, "approved_by": event.actor}
    elif isinstance(event, CompensationSettled):
        changes = {"status": CompensationStatus.SETTLED, "reference": event.reference}
    else:
        changes = {"status": CompensationStatus.FAILED, "failure": event.reason}
    return tuple(replace(c, **changes) if c.request_id == event.request_id else c for c in current)  # type: ignore[arg-type]


def _opened(event: CaseOpened) -> CaseState:
    # An event stored before clocks (None) replays as the snapshot its release stored beside it: no clocks (see
    # clocks_of), no kind or category. A replay must equal the snapshots an upgrade keeps (tests/integration/
    # test_upgrade.py); the snapshot alone cannot tell them.
    selecting = event.signal if event.clocks is not None else None  # what named clocks are selected by
    return CaseState(
        case_id=event.case_id,
        customer_id=event.customer_id,
        ordinal=event.ordinal,
        status=CaseStatus.OPEN,
        severity=event.severity,
        customer_tier=event.customer_tier,
        channel=event.channel,
        opened_at=event.opened_at,
        received_at=event.signal.received_at if event.signal else event.at,
        first_response_deadline=event.first_response_deadline,
        resolution_deadline=event.resolution_deadline,
        resolution_clock_started_at=event.opened_at,
        signal_count=1 if event.signal else 0,
        amount_at_stake=event.signal.amount_at_stake if event.signal else event.amount_at_stake,
        version=1,
        kind=None if selecting is None else selecting.type,
        category=None if selecting is None else _category(selecting.category),
        clocks=_recorded(event.clocks),
        summary=event.summary,
        opened_by_hand=event.signal is None and event.clocks is not None,
    )


def _category(text: str) -> Category | None:
    try:
        return Category(text)
    except ValueError:  # a category this release does not know selects no rule that names one
        return None


def replay(events: list[CaseEvent]) -> CaseState | None:
    """The state a stream's events describe."""
    state: CaseState | None = None
    for event in events:
        state = evolve(state, event)
    return state


CASE_STATE: TypeAdapter[CaseState] = TypeAdapter(CaseState)
