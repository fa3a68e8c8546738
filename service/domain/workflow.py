"""Working a case: the decisions behind the staff's commands. Rules live here, not in the HTTP layer."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from service.domain.case import CaseIds, CaseState, CaseStatus, clock_case, paused, resumed
from service.domain.clock_calendars import ClockCase
from service.domain.errors import InvalidValue, MissingField, NotAllowed, WrongState
from service.domain.events import (
    CaseAcknowledged,
    CaseAssigned,
    CaseClosed,
    CaseEvent,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    FollowUpRecorded,
    NoteAdded,
    ResolutionType,
    ResumeCause,
    StepAdded,
    StepKind,
    StepOutcome,
    StepRecorded,
)
from service.domain.money import checked_stake
from service.domain.severity import Severity
from service.domain.signals import Channel, Money, Tier
from service.domain.sla import RESOLUTION, SlaPolicy
from service.domain.summary import summary_of

RESOLVERS = frozenset({"manager", "owner"})


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: str  # agent, manager or owner


def decide_assign(state: CaseState, owner: str, actor: Actor, now: datetime) -> list[CaseEvent]:
    """Any open case can be given an owner; assigning the current owner again changes nothing."""
    _open(state)
    if not owner.strip():
        raise MissingField("owner is required", "owner")
    if owner == state.owner:
        return []
    return [CaseAssigned(case_id=state.case_id, at=now, actor=actor.name, owner=owner)]


def decide_acknowledge(state: CaseState, actor: Actor, now: datetime) -> list[CaseEvent]:
    """An explicit acknowledge stops the first-response clock; only the first one counts."""
    _open(state)
    if state.acknowledged_at is not None:
        return []
    return [CaseAcknowledged(case_id=state.case_id, at=now, actor=actor.name)]


def decide_add_step(state: CaseState, kind: StepKind, actor: Actor, now: datetime) -> list[CaseEvent]:
    """Recovery steps are planned on open cases; each gets the next number of the case."""
    _open(state)
    step_id = f"step-{len(state.steps) + 1}"
    return [StepAdded(case_id=state.case_id, at=now, actor=actor.name, step_id=step_id, kind=kind)]


def decide_record_step(
    state: CaseState, step_id: str, outcome: StepOutcome, notes: str, actor: Actor, now: datetime
) -> list[CaseEvent]:
    """A step ends completed, skipped or failed, once; recording the same outcome again changes nothing."""
    step = next((s for s in state.steps if s.step_id == step_id), None)
    if step is None:
        raise InvalidValue(f"case {state.case_id} has no step {step_id}", "step_id")
    if step.outcome is not None:
        if step.outcome is outcome:
            return []
        raise WrongState(f"step {step_id} already ended {step.outcome}")
    _open(state)
    return [
        StepRecorded(
            case_id=state.case_id, at=now, actor=actor.name, step_id=step_id, outcome=outcome, notes=notes
        )
    ]


def decide_resolve(
    state: CaseState,
    resolution_type: ResolutionType | None,
    root_cause: str | None,
    prevention_action: str | None,
    actor: Actor,
    root_causes: Collection[str],
    now: datetime,
    *,
    sla: SlaPolicy | None = None,
) -> list[CaseEvent]:
    """Only a manager or owner resolves, and only with a resolution type, a known root cause and a prevention.

    A paused case resumes first (case.resumed, cause staff), so its clocks stop with the time the pause gave
    back; deciding that needs the SLA policy, and without it a paused case is refused.
    """
    if actor.role not in RESOLVERS:
        raise NotAllowed(f"role {actor.role} may not resolve a case (manager or owner may)")
    _open(state)
    if resolution_type is None:
        raise MissingField("resolution_type is required", "resolution_type")
    if not root_cause or not root_cause.strip():
        raise MissingField("root_cause is required: a tag from the root-cause taxonomy", "root_cause")
    if root_cause not in root_causes:
        raise InvalidValue(
            f"root_cause {root_cause!r} is not in the taxonomy: {sorted(root_causes)}", "root_cause"
        )
    if not prevention_action or not prevention_action.strip():
        raise MissingField("prevention_action is required", "prevention_action")
    ended: list[CaseEvent] = []
    if paused(state) is not None:
        if sla is None:
            raise WrongState("the case is paused: resume it before resolving it")
        ended = [resumed(state, sla, ResumeCause.STAFF, actor.name, now)]
    return [
        *ended,
        CaseResolved(
            case_id=state.case_id,
            at=now,
            actor=actor.name,
            resolution_type=resolution_type,
            root_cause=root_cause,
            prevention_action=prevention_action,
        ),
    ]


def decide_follow_up(
    state: CaseState,
    latest: CaseState,
    satisfied: bool,
    notes: str,
    actor: Actor,
    sla: SlaPolicy,
    now: datetime,
) -> list[CaseEvent]:
    """The follow-up of a resolved case closes it when the customer is satisfied and reopens it when not
    (only the customer's latest case reopens: `latest` is that case)."""
    if state.status is not CaseStatus.RESOLVED:
        raise WrongState(f"a follow-up needs a resolved case; this one is {state.status}")
    if not satisfied:
        _latest_of_its_customer(state, latest)
    recorded = FollowUpRecorded(
        case_id=state.case_id, at=now, actor=actor.name, satisfied=satisfied, notes=notes
    )
    if satisfied:
        return [recorded, CaseClosed(case_id=state.case_id, at=now, actor=actor.name)]
    return [recorded, _reopened(state, "follow-up: customer not satisfied", actor, sla, now)]


def decide_reopen(
    state: CaseState, latest: CaseState, reason: str, actor: Actor, sla: SlaPolicy, now: datetime
) -> list[CaseEvent]:
    """A resolved or closed case reopens with a reason if it is its customer's latest; the resolution clock restarts now."""
    if state.status is CaseStatus.OPEN:
        raise WrongState("the case is already open")
    _latest_of_its_customer(state, latest)
    if not reason.strip():
        raise MissingField("reason is required", "reason")
    return [_reopened(state, reason, actor, sla, now)]


def decide_add_note(state: CaseState, note: str, actor: Actor, now: datetime) -> list[CaseEvent]:
    """Any staff member may add an internal note to a case in any status; a blank note is refused."""
    if not note.strip():
        raise MissingField("note is required", "note")
    return [NoteAdded(case_id=state.case_id, at=now, actor=actor.name, note=note)]


def decide_open_by_hand(
    latest: CaseState | None,
    customer_id: str,
    severity: Severity,
    channel: Channel | None,
    tier: Tier,
    reason: str,
    actor: Actor,
    sla: SlaPolicy,
    now: datetime,
    case_ids: CaseIds,
    stake: Money | None = None,
) -> list[CaseEvent]:
    """A manager or owner opens a case for an internal escalation, optionally stating the amount at stake (without
    one every compensation on it waits for approval); a customer never has two open cases."""
    if actor.role not in RESOLVERS:
        raise NotAllowed(f"role {actor.role} may not open a case by hand (manager or owner may)")
    if not customer_id.strip():
        raise MissingField("customer_id is required", "customer_id")
    if not reason.strip():
        raise MissingField("reason is required", "reason")
    if (
        latest is not None
        and latest.status is not CaseStatus.CLOSED
        and latest.status is not CaseStatus.RESOLVED
    ):
        raise WrongState(f"customer {customer_id} already has open case {latest.case_id}")
    ordinal = latest.ordinal + 1 if latest else 1
    first_response, resolution, *named = sla.opening_clocks(
        ClockCase(severity=severity, channel=channel, tier=tier), now
    )
    return [
        CaseOpened(
            case_id=case_ids.by_hand(customer_id, ordinal, actor.name, now),
            at=now,
            customer_id=customer_id,
            ordinal=ordinal,
            customer_tier=tier,
            channel=channel,
            severity=severity,
            signal=None,
            opened_at=now,
            first_response_deadline=first_response.deadline,
            resolution_deadline=resolution.deadline,
            opened_by=actor.name,
            reason=reason,
            clocks=(first_response, resolution, *named),
            summary=summary_of(reason),
            amount_at_stake=None if stake is None else Money(checked_stake(stake.amount, stake.currency), stake.currency),
        )
    ]


def _reopened(state: CaseState, reason: str, actor: Actor, sla: SlaPolicy, now: datetime) -> CaseReopened:
    resolution = sla.clock(RESOLUTION, clock_case(state), now)
    return CaseReopened(
        case_id=state.case_id,
        at=now,
        actor=actor.name,
        reason=reason,
        signal=None,
        severity=state.severity,
        resolution_deadline=resolution.deadline,
        clocks=(resolution,),
    )


def _latest_of_its_customer(state: CaseState, latest: CaseState) -> None:
    """Only a customer's latest case reopens: intake places their signals on it, and they have one open case."""
    if latest.ordinal <= state.ordinal:
        return
    if latest.status is CaseStatus.OPEN:
        raise WrongState(
            f"customer {state.customer_id} has a newer open case {latest.case_id}: work that one"
        )
    raise WrongState(
        f"customer {state.customer_id} has a newer case {latest.case_id} ({latest.status}): reopen that one instead"
    )


def _open(state: CaseState) -> None:
    if state.status is not CaseStatus.OPEN:
        raise WrongState(f"the case is {state.status}, not open")
