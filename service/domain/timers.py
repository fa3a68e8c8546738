"""SLA timers: which warnings and breaches an open case is waiting for, and what a due one decides."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service.domain.case import CaseState, CaseStatus, paused, resumed, running_clocks, sla_key
from service.domain.events import CaseEvent, FollowUpDue, ResumeCause, SlaBreached, SlaKind, SlaWarned
from service.domain.sla import SlaPolicy

_SLA_EVENT_NAMESPACE = uuid.UUID("4d2c6a8e-7b1f-4f0e-a3c5-9e8d7f6b5a41")


class TimerKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    FOLLOW_UP = "follow_up"  # on the resolution clock: the customer is asked how it went
    RESUME = "resume"  # a paused case's time is up (its sla is the pause reason): it resumes by itself


@dataclass(frozen=True, slots=True)
class Timer:
    case_id: str
    sla: str  # the clock's name
    kind: TimerKind
    deadline: datetime
    due_at: datetime


def timers_for(state: CaseState | None, sla: SlaPolicy) -> list[Timer]:
    """An open case waits for a warning and a breach of each running clock; a resolved one for its follow-up.

    Deadlines and warning points are the clocks' own (set by the policy of their day); only a clock set
    before warning points were recorded takes the fraction from today's policy.
    """
    if state is not None and state.status is CaseStatus.RESOLVED and state.resolved_at is not None:
        due = state.resolved_at + sla.followup_after
        return [Timer(state.case_id, SlaKind.RESOLUTION, TimerKind.FOLLOW_UP, due, due)]
    if state is None or state.status is not CaseStatus.OPEN:
        return []
    pause = paused(state)
    resume = []
    if pause is not None and pause.resumes_at is not None:
        resume = [Timer(state.case_id, pause.reason, TimerKind.RESUME, pause.resumes_at, pause.resumes_at)]
    return [
        timer
        for clock in running_clocks(state)
        for timer in (
            Timer(state.case_id, clock.name, TimerKind.WARNING, clock.deadline, sla.warning_of(clock)),
            Timer(state.case_id, clock.name, TimerKind.BREACH, clock.deadline, clock.deadline),
        )
    ] + resume


def decide_timer(state: CaseState, timer: Timer, now: datetime, sla: SlaPolicy) -> list[CaseEvent]:
    """A due timer fires once for its deadline; a stopped clock or a moved deadline decides nothing."""
    current = {(t.sla, t.kind): t.deadline for t in timers_for(state, sla)}
    if current.get((timer.sla, timer.kind)) != timer.deadline:
        return []
    if timer.kind is TimerKind.RESUME:
        return _resume(state, timer, sla, now)
    if sla_key(timer.sla, timer.kind, timer.deadline) in state.sla_fired:
        return []
    if timer.kind is TimerKind.FOLLOW_UP:
        return [
            FollowUpDue(case_id=state.case_id, at=now, customer_id=state.customer_id, due_at=timer.deadline)
        ]
    fired_type = _EVENT[timer.kind]
    return [
        fired_type(
            case_id=state.case_id,
            at=now,
            customer_id=state.customer_id,
            severity=state.severity,
            sla=timer.sla,
            deadline=timer.deadline,
        )
    ]


def _resume(state: CaseState, timer: Timer, sla: SlaPolicy, now: datetime) -> list[CaseEvent]:
    """A pause's time is up: the case resumes by itself, because `until` came or the budget ran out."""
    pause = paused(state)
    assert pause is not None and pause.resumes_at is not None, "a current resume timer is a paused case's"
    reached = pause.until is not None and pause.until <= pause.resumes_at
    cause = ResumeCause.UNTIL_REACHED if reached else ResumeCause.BUDGET_SPENT
    return [resumed(state, sla, cause, None, now)]


def sla_event_id(case_id: str, sla: str, kind: TimerKind, deadline: datetime) -> str:
    """One id per case, SLA, kind and deadline: consumers drop anything that repeats it."""
    return str(uuid.uuid5(_SLA_EVENT_NAMESPACE, f"{case_id}/{sla}/{kind}/{deadline.isoformat()}"))


_EVENT: dict[TimerKind, type[SlaWarned] | type[SlaBreached]] = {
    TimerKind.WARNING: SlaWarned,
    TimerKind.BREACH: SlaBreached,
}
