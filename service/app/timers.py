"""Use case: fire the SLA timers that are due, as case events appended with optimistic concurrency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.app.conflicts import decided_again_on_conflict
from service.domain.case import CaseState, evolve
from service.domain.events import CaseEvent, SlaBreached, SlaWarned
from service.domain.intake import NewEvent, changed_timers
from service.domain.sla import SlaPolicy
from service.domain.timers import Timer, decide_timer

REARM_AFTER = timedelta(seconds=30)  # how often the snapshot of a case whose timers are set aside is read again


class TimerTransaction(Protocol):
    async def claim_due(self, limit: int) -> tuple[list[Timer], datetime]: ...

    async def cases(self, case_ids: Sequence[str]) -> dict[str, CaseState]: ...

    async def record(
        self,
        fired: Sequence[Timer],
        events: Sequence[NewEvent],
        cases: Mapping[str, CaseState],
        timers: Mapping[str, Sequence[Timer]],
        set_aside: Sequence[Timer] = (),
    ) -> None:
        """Mark `fired` fired and `set_aside` set aside (their case could not be read), with the events."""

    async def rearm_readable(self, after: timedelta) -> list[str]:
        """Arm again the set-aside timers (set aside at least `after` ago) of the cases whose snapshot reads now;
        those cases' ids. The others are looked at again `after` from now."""


class TimerStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[TimerTransaction]: ...


@dataclass(frozen=True)
class Fired:
    timer: Timer
    event: SlaWarned | SlaBreached | None  # None: the clock stopped, the deadline moved, or not an SLA timer
    lag_seconds: float  # from due time to firing, on the database's clock
    fault: str | None = None  # the error type when deciding this timer failed: it was isolated, not fired


async def fire_due_timers(store: TimerStore, sla: SlaPolicy, limit: int) -> list[Fired]:
    """Claim due timers and decide each against its case; two instances never fire the same timer twice."""
    fired, _ = await decided_again_on_conflict(lambda: _fire_once(store, sla, limit))
    return fired


async def _fire_once(store: TimerStore, sla: SlaPolicy, limit: int) -> list[Fired]:
    async with store.transaction() as tx:
        due, now = await tx.claim_due(limit)
        if not due:
            return []
        states = await tx.cases(sorted({t.case_id for t in due}))
        changed: dict[str, CaseState] = {}
        events: list[NewEvent] = []
        fired: list[Fired] = []
        unreadable = [t for t in due if t.case_id not in states]  # set aside until the snapshot reads again
        for timer in (t for t in due if t.case_id in states):
            state = changed.get(timer.case_id) or states[timer.case_id]
            lag = (now - timer.due_at).total_seconds()
            try:
                decided = decide_timer(state, timer, now, sla)
                evolved = _evolved(state, decided)
            except Exception as e:  # a bug this one timer triggers: it is marked and reported, the rest fire
                fired.append(Fired(timer, None, lag, type(e).__name__))
                continue
            for new, state in evolved:
                changed[timer.case_id] = state
                events.append(NewEvent(state.case_id, state.version, new))
            sla_event = decided[0] if decided and isinstance(decided[0], SlaWarned | SlaBreached) else None
            fired.append(Fired(timer, sla_event, lag))
        # a resume moves the case's clocks: their warnings and breaches are armed again at the new deadlines
        readable = [t for t in due if t.case_id in states]
        await tx.record(readable, events, changed, changed_timers(states, changed, sla), unreadable)
    return fired


async def rearm_set_aside(store: TimerStore, after: timedelta = REARM_AFTER) -> list[str]:
    """Timers set aside for an unreadable snapshot come back once it reads (repaired by a rebuild or upcaster)."""
    async with store.transaction() as tx:
        return await tx.rearm_readable(after)


def _evolved(state: CaseState | None, decided: Sequence[CaseEvent]) -> list[tuple[CaseEvent, CaseState]]:
    """Each decided event with the state after it, computed before anything is kept."""
    steps = []
    for event in decided:
        state = evolve(state, event)
        steps.append((event, state))
    return steps
