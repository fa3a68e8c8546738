"""Planning one consumed batch of signals: classify each and decide what it does to its case."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from service.domain.case import CaseIds, CaseState, Placement, clocked, decide_signal, evolve, placement
from service.domain.events import CaseEscalated, CaseEvent, CaseOpened, CaseReopened
from service.domain.incidents import IncidentEvent
from service.domain.severity import Classification, CustomerHistory, Policy, Severity, classify
from service.domain.signals import Signal
from service.domain.sla import SlaPolicy
from service.domain.timers import Timer, timers_for
from service.domain.trends import TrendDetected


class Outcome(StrEnum):
    OPENED = "opened"
    ATTACHED = "attached"
    ESCALATED = "escalated"
    REOPENED = "reopened"
    NOT_A_FAILURE = "not_a_failure"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class NewEvent:
    stream_id: str
    version: int
    event: CaseEvent | TrendDetected | IncidentEvent
    traceparent: str | None = None  # the W3C trace context of what caused it (a signal, a request), if known


@dataclass(frozen=True)
class Applied:
    signal: Signal
    classification: Classification
    outcome: Outcome
    case_id: str | None
    case_severity: Severity | None = None  # the case's severity after the signal


@dataclass
class IntakePlan:
    events: list[NewEvent] = field(default_factory=list)
    cases: dict[str, CaseState] = field(default_factory=dict)  # changed cases by case id
    applied: list[Applied] = field(default_factory=list)
    timers: dict[str, list[Timer]] = field(default_factory=dict)  # every timer of a case whose timers changed
    root_causes: set[str] = field(default_factory=set)  # tags a reopen took a resolved case from


def plan_intake(
    signals: Sequence[Signal],
    sentiments: Sequence[float | None],
    latest_cases: Mapping[str, CaseState],
    recent_failures: Mapping[str, Sequence[datetime]],
    policy: Policy,
    sla: SlaPolicy,
    history_window: timedelta,
    now: datetime,
    case_ids: CaseIds,
) -> IntakePlan:
    """Signals apply in order; each sees the case and history the ones before it left behind."""
    plan = IntakePlan()
    latest = dict(latest_cases)
    failures = {customer: sorted(times) for customer, times in recent_failures.items()}  # kept sorted
    for signal, sentiment in zip(signals, sentiments, strict=True):
        state = latest.get(signal.customer_id)
        times = failures.setdefault(signal.customer_id, [])
        history = _history(state, signal, times, sla, history_window)
        classification = clocked(signal, classify(signal, history, policy, sentiment), sla)
        events = decide_signal(state, signal, classification, sla, now, case_ids)
        for event in events:
            state = evolve(state, event)
            plan.events.append(NewEvent(state.case_id, state.version, event, signal.traceparent))
        if state is not None and events:
            latest[signal.customer_id] = plan.cases[state.case_id] = state
        if classification.severity is not None:
            insort(times, signal.occurred_at)
        outcome = _outcome(classification, events)
        if state is None:
            plan.applied.append(Applied(signal, classification, outcome, None))
        else:
            plan.applied.append(Applied(signal, classification, outcome, state.case_id, state.severity))
    plan.timers = changed_timers(latest_cases, plan.cases, sla)
    plan.root_causes = root_causes_moved(latest_cases.values(), plan.cases)
    return plan


def root_causes_moved(before: Iterable[CaseState], after: Mapping[str, CaseState]) -> set[str]:
    """Root-cause tags whose resolved cases changed: a resolution added, or one a reopen cleared."""
    previous = {state.case_id: state for state in before}
    moved = set()
    for case_id, state in after.items():
        old = previous.get(case_id)
        was = None if old is None else old.resolution
        if was != state.resolution:
            moved |= {r.root_cause for r in (was, state.resolution) if r is not None}
    return moved


def changed_timers(
    before: Mapping[str, CaseState], after: Mapping[str, CaseState], sla: SlaPolicy
) -> dict[str, list[Timer]]:
    """Timers of the cases whose timers moved: a new case, a tighter deadline, a stopped or restarted clock."""
    previous = {state.case_id: state for state in before.values()}
    changed = {}
    for case_id, state in after.items():
        old = previous.get(case_id)
        if old is not None and _clocks(old) == _clocks(state):
            continue  # most signals attach without moving a clock: nothing to recompute
        timers = timers_for(state, sla)
        if timers != timers_for(old, sla):
            changed[case_id] = timers
    return changed


def _clocks(state: CaseState) -> tuple[object, ...]:
    """Everything the timers of a case follow from."""
    return (
        state.status,
        state.resolution_deadline,
        state.resolution_clock_started_at,
        state.first_response_deadline,
        state.acknowledged_at,
        state.resolved_at,
        state.clocks,
        state.pauses,
    )


def _history(
    state: CaseState | None,
    signal: Signal,
    failure_times: Sequence[datetime],
    sla: SlaPolicy,
    window: timedelta,
) -> CustomerHistory:
    """`failure_times` is sorted: two binary searches count the failures in the window."""
    since = signal.occurred_at - window
    prior = bisect_right(failure_times, signal.occurred_at) - bisect_left(failure_times, since)
    return CustomerHistory(prior_failures_in_window=prior, reopen_count=_reopens_counted(state, signal, sla))


def _reopens_counted(state: CaseState | None, signal: Signal, sla: SlaPolicy) -> int:
    """The reopens of the case the signal lands on, counting the one it causes; a new case has none."""
    where = placement(state, signal, sla)
    if state is None or where is Placement.OPEN_NEW:
        return 0
    return state.reopen_count + (where is Placement.REOPEN)


def _outcome(classification: Classification, events: Sequence[CaseEvent]) -> Outcome:
    if classification.severity is None:
        return Outcome.NOT_A_FAILURE
    kinds = {type(e) for e in events}
    for kind, outcome in (
        (CaseOpened, Outcome.OPENED),
        (CaseReopened, Outcome.REOPENED),
        (CaseEscalated, Outcome.ESCALATED),
    ):
        if kind in kinds:
            return outcome
    return Outcome.ATTACHED
