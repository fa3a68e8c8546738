"""Pausing a case: typed reasons, a budget of paused time per reason and case, and the resume that ends it.

A pause stops the clocks that honour pauses (`pausable`); when it ends, each of them gets back the open time
the pause took (see `resumed` in case.py). `until` later than the budget allows is clamped, not refused: the
case resumes by itself when the budget runs out (`resumes_at`), and the event says both.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.domain.business_time import ZERO
from service.domain.case import CaseState, CaseStatus, paused, resumed
from service.domain.errors import InvalidValue, WrongState
from service.domain.events import CaseEvent, CasePaused, ResumeCause
from service.domain.sla import PauseReason, SlaPolicy
from service.domain.workflow import Actor


def paused_time(state: CaseState, now: datetime) -> dict[PauseReason, timedelta]:
    """Wall time the case has spent paused, by reason, the current pause counted up to `now`."""
    spent = dict.fromkeys(PauseReason, ZERO)
    for pause in state.pauses:
        spent[pause.reason] += (pause.ended_at or max(now, pause.started_at)) - pause.started_at
    return spent


def budget_left(state: CaseState, reason: PauseReason, sla: SlaPolicy) -> timedelta:
    """What is left of a reason's budget for this case, its ended pauses counted."""
    used = sum((p.wall_time for p in state.pauses if p.reason is reason), ZERO)
    return max(sla.pause_budget(reason) - used, ZERO)


def decide_pause(
    state: CaseState,
    actor: Actor,
    reason: PauseReason,
    until: datetime | None,
    sla: SlaPolicy,
    now: datetime,
) -> list[CaseEvent]:
    """An open case that is not paused pauses for a reason with budget left; it resumes by itself at the earlier
    of `until` (which must be in the future) and the moment that budget runs out."""
    if state.status is not CaseStatus.OPEN:
        raise WrongState(f"the case is {state.status}, not open: only an open case pauses")
    current = paused(state)
    if current is not None:
        raise WrongState(f"the case is already paused ({current.reason}): resume it first")
    if until is not None and until <= now:
        raise InvalidValue("until must be in the future", "until")
    left = budget_left(state, reason, sla)
    if left <= ZERO:
        raise WrongState(f"the case has used its whole {reason} pause budget ({sla.pause_budget(reason)})")
    ends = now + left
    resumes_at = ends if until is None else min(until, ends)
    return [
        CasePaused(
            case_id=state.case_id, at=now, actor=actor.name, reason=reason, until=until, resumes_at=resumes_at
        )
    ]


def decide_resume(state: CaseState, actor: Actor, sla: SlaPolicy, now: datetime) -> list[CaseEvent]:
    """Staff end a pause; the clocks it stopped go on with the time they had left."""
    if paused(state) is None:
        raise WrongState("the case is not paused")
    return [resumed(state, sla, ResumeCause.STAFF, actor.name, now)]
