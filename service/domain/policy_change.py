"""A new version of the SLA policy applied to an open case: which clocks move, and how far (issue 12, item 5)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from service.domain.calendars import ALWAYS_OPEN_NAME
from service.domain.case import CaseState, CaseStatus, clock_case, clocks_of
from service.domain.events import ClockCorrection, DeadlinesCorrected
from service.domain.sla import SlaClock, SlaPolicy, resumed_clock


def corrections(
    state: CaseState, policy: SlaPolicy, now: datetime, from_version: str | None = None
) -> DeadlinesCorrected | None:
    """Each running clock of an open case as the new policy sets it from the clock's own start, its window and
    calendar the ones the policy gives the case now; a named clock the policy adds starts at the case's opening,
    one it no longer selects stops. Only the clocks that move are listed; None when none does."""
    if state.status is not CaseStatus.OPEN:
        return None
    case, clocks = clock_case(state), clocks_of(state)
    moved = [
        c for c in (_corrected(state, policy, clock) for clock in clocks if clock.stopped_at is None) if c
    ]
    known = {c.name for c in clocks}
    for name in policy.named_clocks:
        added = None if name in known else policy.named_clock(name, case, state.opened_at)
        if added is not None:
            moved.append(ClockCorrection(name=name, before=None, after=_paused(state, policy, added)))
    if not moved:
        return None
    return DeadlinesCorrected(
        case_id=state.case_id,
        at=now,
        from_version=from_version,
        to_version=policy.version,
        corrections=tuple(moved),
    )


def _corrected(state: CaseState, policy: SlaPolicy, clock: SlaClock) -> ClockCorrection | None:
    after = policy.rerun(clock, clock_case(state))
    if after is not None:
        after = _paused(state, policy, after)
        if _same(policy, clock, after):
            return None
    # a clock recorded before warning points warns at the policy's fraction of its 24x7 window: say when
    before = replace(clock, warning_at=policy.warning_of(clock))
    return ClockCorrection(name=clock.name, before=before, after=after)


def _paused(state: CaseState, policy: SlaPolicy, clock: SlaClock) -> SlaClock:
    """A pausable clock gets back the open time each ended pause of the case took, as each resume gave it."""
    calendar = policy.calendar(clock.calendar)
    for pause in state.pauses:
        if pause.ended_at is not None:
            clock = resumed_clock(clock, calendar, pause, pause.ended_at)
    return clock


def _same(policy: SlaPolicy, old: SlaClock, new: SlaClock) -> bool:
    """Nothing a timer, a pause or a reader of the clock goes by moved (a new version alone moves nothing)."""
    return (
        old.deadline == new.deadline
        and policy.warning_of(old) == policy.warning_of(new)
        and (old.calendar or ALWAYS_OPEN_NAME) == new.calendar
        and old.pausable == new.pausable
    )


@dataclass
class ClockShift:
    """How one clock moved across the cases looked at."""

    earlier: int = 0
    later: int = 0
    added: int = 0
    stopped: int = 0
    same_deadline: int = 0  # its warning point, calendar or pausing changed
    largest: timedelta = timedelta(0)  # the largest move of a deadline, either way

    def count(self, correction: ClockCorrection) -> None:
        before, after = correction.before, correction.after
        if before is None or after is None:
            self.added += before is None
            self.stopped += after is None
            return
        shift = after.deadline - before.deadline
        self.earlier += shift < timedelta(0)
        self.later += shift > timedelta(0)
        self.same_deadline += shift == timedelta(0)
        self.largest = max(self.largest, abs(shift))


@dataclass
class PolicyChange:
    """What a new SLA policy does to the open cases: counts per clock, and the corrections themselves."""

    from_version: str | None
    to_version: str | None
    looked_at: int = 0
    changed: int = 0
    failed: list[str] = field(default_factory=list)  # case ids that could not be corrected (logged)
    clocks: dict[str, ClockShift] = field(default_factory=dict)
    examples: list[DeadlinesCorrected] = field(default_factory=list)
    keep: int = 10  # examples kept

    def fail(self, case_id: str) -> None:
        """One open case looked at that could not be corrected (or read)."""
        self.looked_at += 1
        self.failed.append(case_id)

    def add(self, correction: DeadlinesCorrected | None) -> None:
        """One open case looked at, and its correction if it has one."""
        self.looked_at += 1
        if correction is None:
            return
        self.changed += 1
        for clock in correction.corrections:
            self.clocks.setdefault(clock.name, ClockShift()).count(clock)
        if len(self.examples) < self.keep:
            self.examples.append(correction)
