"""Staff and system commands as values, and the one dispatch that decides each (the rules are the deciders').

A command is what was asked, nothing else: who asked, when and on which case are the facts it is decided on.
Adding one is a class here, its decider, and one routing entry in the HTTP adapter (docs/developers.md).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from service.domain.case import CaseIds, CaseState
from service.domain.compensation import (
    CompensationHistory,
    compensation_request_id,
    decide_approve_compensation,
    decide_compensation_result,
    decide_request_compensation,
)
from service.domain.compensation_limits import CompensationLimits
from service.domain.events import CaseEvent, CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.pauses import decide_pause, decide_resume
from service.domain.policy_change import corrections
from service.domain.severity import Severity
from service.domain.signals import Channel, Money, Tier
from service.domain.sla import PauseReason, SlaPolicy
from service.domain.summary import decide_edit_summary
from service.domain.workflow import (
    Actor,
    decide_acknowledge,
    decide_add_note,
    decide_add_step,
    decide_assign,
    decide_follow_up,
    decide_open_by_hand,
    decide_record_step,
    decide_reopen,
    decide_resolve,
)


@dataclass(frozen=True, slots=True)
class Assign:
    owner: str


@dataclass(frozen=True, slots=True)
class Acknowledge:
    pass


@dataclass(frozen=True, slots=True)
class AddStep:
    kind: StepKind


@dataclass(frozen=True, slots=True)
class RecordStep:
    step_id: str
    outcome: StepOutcome
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Resolve:
    resolution_type: ResolutionType | None
    root_cause: str | None
    prevention_action: str | None


@dataclass(frozen=True, slots=True)
class RequestCompensation:
    kind: CompensationKind
    amount: Decimal
    currency: str
    reason: str


@dataclass(frozen=True, slots=True)
class ApproveCompensation:
    request_id: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    satisfied: bool
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Reopen:
    reason: str


@dataclass(frozen=True, slots=True)
class AddNote:
    note: str


@dataclass(frozen=True, slots=True)
class EditSummary:
    summary: str


@dataclass(frozen=True, slots=True)
class Pause:
    reason: PauseReason
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class OpenByHand:
    """Opens the customer's next case: decided on their latest case, not on one named."""

    customer_id: str
    severity: Severity
    channel: Channel | None
    tier: Tier
    reason: str
    stake: Money | None = None


@dataclass(frozen=True, slots=True)
class LandCompensationResult:
    """Billing's answer to one request (the billing-results consumer sends it)."""

    request_id: str
    settled: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CorrectDeadlines:
    """A new SLA policy version's correction of one open case (the policy apply sends it)."""

    policy: SlaPolicy
    from_version: str | None


Command = (
    Assign
    | Acknowledge
    | AddStep
    | RecordStep
    | Resolve
    | RequestCompensation
    | ApproveCompensation
    | FollowUp
    | Reopen
    | AddNote
    | EditSummary
    | Pause
    | Resume
    | OpenByHand
    | LandCompensationResult
    | CorrectDeadlines
)

_NAMES: dict[type[object], str] = {
    Assign: "assign",
    Acknowledge: "acknowledge",
    AddStep: "add_step",
    RecordStep: "step_outcome",
    Resolve: "resolve",
    RequestCompensation: "request_compensation",
    ApproveCompensation: "approve",
    FollowUp: "follow_up",
    Reopen: "reopen",
    AddNote: "add_note",
    EditSummary: "edit_summary",
    Pause: "pause",
    Resume: "resume",
    OpenByHand: "open",
    LandCompensationResult: "compensation_result",
    CorrectDeadlines: "correct_deadlines",
}
NEEDS_LATEST = (FollowUp, Reopen, OpenByHand)
"""Decided with the customer's latest case too: only the latest case reopens, a customer has one open case."""
NEEDS_HISTORY = (RequestCompensation, ApproveCompensation)
"""Decided with the compensations the limits count across cases (the customer's, the actor's in a day)."""


def command_name(command: Command) -> str:
    """The command's name in logs and for an Idempotency-Key (a reused key must name the same command): a step's
    outcome and an approval name their step and request, so one key never stands for two of them."""
    name = _NAMES[type(command)]
    if isinstance(command, RecordStep):
        return f"{name}:{command.step_id}"
    if isinstance(command, ApproveCompensation):
        return f"{name}:{command.request_id}"
    return name


@dataclass(frozen=True)
class CommandRules:
    """What the deciders check commands against: the service's configured policies."""

    sla: SlaPolicy
    root_causes: Collection[str] = frozenset()
    limits: CompensationLimits = field(default_factory=CompensationLimits)
    case_ids: CaseIds | None = None  # needed to open a case by hand


@dataclass(frozen=True, slots=True)
class Facts:
    """What a command is decided on besides its case: who sent it, when, and what its kind needs to look at."""

    actor: Actor
    now: datetime
    idempotency_key: str | None = None  # a compensation's request id derives from it
    latest: CaseState | None = None  # the customer's latest case (NEEDS_LATEST)
    history: CompensationHistory = field(default_factory=CompensationHistory)  # (NEEDS_HISTORY)


def decide(command: Command, case: CaseState | None, facts: Facts, rules: CommandRules) -> list[CaseEvent]:
    """The events the command decides on the case (None only when it opens one); a refusal raises DomainError."""
    actor, now = facts.actor, facts.now
    if isinstance(command, OpenByHand):
        if rules.case_ids is None:
            raise ValueError("opening a case by hand needs the service's case ids (CommandRules.case_ids)")
        c = command
        return decide_open_by_hand(
            facts.latest, c.customer_id, c.severity, c.channel, c.tier, c.reason, actor, rules.sla, now,
            rules.case_ids, c.stake,
        )  # fmt: skip
    if case is None:
        raise ValueError(f"{command_name(command)} is decided on a case")
    match command:
        case Assign(owner):
            return decide_assign(case, owner, actor, now)
        case Acknowledge():
            return decide_acknowledge(case, actor, now)
        case AddStep(kind):
            return decide_add_step(case, kind, actor, now)
        case RecordStep(step_id, outcome, notes):
            return decide_record_step(case, step_id, outcome, notes, actor, now)
        case Resolve(resolution_type, root_cause, prevention_action):
            return decide_resolve(
                case,
                resolution_type,
                root_cause,
                prevention_action,
                actor,
                rules.root_causes,
                now,
                sla=rules.sla,
            )
        case RequestCompensation(kind, amount, currency, reason):
            request_id = compensation_request_id(
                case.case_id, actor.name, facts.idempotency_key, len(case.compensations) + 1
            )
            return decide_request_compensation(
                case, request_id, kind, amount, currency, reason, actor, rules.limits, facts.history, now
            )
        case ApproveCompensation(request_id):
            return decide_approve_compensation(case, request_id, actor, rules.limits, facts.history, now)
        case FollowUp(satisfied, notes):
            return decide_follow_up(case, facts.latest or case, satisfied, notes, actor, rules.sla, now)
        case Reopen(reason):
            return decide_reopen(case, facts.latest or case, reason, actor, rules.sla, now)
        case AddNote(note):
            return decide_add_note(case, note, actor, now)
        case EditSummary(summary):
            return decide_edit_summary(case, summary, actor, now)
        case Pause(reason, until):
            return decide_pause(case, actor, reason, until, rules.sla, now)
        case Resume():
            return decide_resume(case, actor, rules.sla, now)
        case LandCompensationResult(request_id, settled, detail):
            return decide_compensation_result(case, request_id, settled, detail, now)
        case CorrectDeadlines(policy, from_version):
            correction = corrections(case, policy, now, from_version)
            return [] if correction is None else [correction]
    raise TypeError(f"no decider for {type(command).__name__}")
