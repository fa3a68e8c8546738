"""Clocks that explain themselves: each clock's state, business time elapsed and left, and why it is due when."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from service.domain.business_time import ZERO, business_time_between
from service.domain.calendars import WEEKDAYS, BusinessCalendar
from service.domain.case import CaseState, CaseStatus, clocks_of, paused, sla_key
from service.domain.severity import Severity
from service.domain.sla import SlaClock, SlaPolicy, deadline_at_stop, paused_business_time

_SHOWN_HOLIDAYS = 3


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # held by the case's pause: it neither counts nor warns nor breaches until the resume
    STOPPED = "stopped"  # the case ended without this clock's goal (closed, or a clock it no longer runs)
    MET = "met"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class ClockReport:
    clock: SlaClock
    state: ClockState
    calendar: BusinessCalendar
    business_elapsed: timedelta
    business_left: timedelta
    explanation: str


def clock_reports(case: CaseState, sla: SlaPolicy, now: datetime) -> list[ClockReport]:
    """Every clock of the case as it stands at `now`, each with the one line that says why it is due when."""
    return [report(clock, case, sla, now) for clock in clocks_of(case)]


def report(clock: SlaClock, case: CaseState, sla: SlaPolicy, now: datetime) -> ClockReport:
    """A clock's state and business time at `now`; time stops counting when the clock stops."""
    calendar = sla.calendar(clock.calendar)
    pause = paused(case)
    end = pause.started_at if pause is not None and pause.holds(clock) else min(now, clock.stopped_at or now)
    spans = tuple(p if p.ended_at else replace(p, ended_at=max(end, p.started_at)) for p in case.pauses)
    given_back = paused_business_time(calendar, spans, clock.started_at, end) if clock.pausable else ZERO
    elapsed = max(business_time_between(calendar, clock.started_at, end) - given_back, ZERO)
    deadline = deadline_at_stop(clock, calendar, case.pauses)
    left = max(business_time_between(calendar, end, deadline), ZERO)
    return ClockReport(
        clock, _state(clock, deadline, case, now), calendar, elapsed, left, explanation(clock, calendar, case)
    )


def _state(clock: SlaClock, deadline_at_stop: datetime, case: CaseState, now: datetime) -> ClockState:
    if clock.stopped_at is not None:
        return ClockState.MET if clock.stopped_at <= deadline_at_stop else ClockState.BREACHED
    pause = paused(case)
    if pause is not None and pause.holds(clock):  # its deadline moves at the resume: not breached meanwhile
        return ClockState.PAUSED
    if sla_key(clock.name, "breach", clock.deadline) in case.sla_fired or now >= clock.deadline:
        return ClockState.BREACHED
    return ClockState.RUNNING if case.status is CaseStatus.OPEN else ClockState.STOPPED


def explanation(clock: SlaClock, calendar: BusinessCalendar, case: CaseState) -> str:
    """'24h of open time in calendar uk-office (Europe/London, Mon-Fri 09:00-17:30) from … → due …'."""
    zone = calendar.zone
    start, due = clock.counted_from.astimezone(zone), clock.deadline.astimezone(zone)
    window = clock.window or clock.deadline - clock.counted_from
    where = f"calendar {calendar.name} ({describe_calendar(calendar, start.date(), due.date())})"
    line = f"{duration_words(window)} of open time in {where} from {_when(start)} → due {_when(due)}"
    if clock.window_from is not None and clock.window_from != clock.started_at:
        line += f"; tightened when the case escalated to {case.severity}"
    if clock.policy_version is not None:
        line += f"; policy {clock.policy_version}"
    return line


def describe_calendar(calendar: BusinessCalendar, first: date, last: date) -> str:
    """Zone, opening hours by runs of days, and the holidays between two local dates."""
    if calendar.always_open:
        return f"{calendar.zone.key}, always open"
    runs: list[tuple[int, int, str]] = []
    for i, day in enumerate(calendar.week):
        hours = ", ".join(str(w) for w in day)
        if hours and runs and runs[-1][1] == i - 1 and runs[-1][2] == hours:
            runs[-1] = (runs[-1][0], i, hours)
        elif hours:
            runs.append((i, i, hours))
    week = "; ".join(f"{_day(a)}{'' if a == b else '–' + _day(b)} {hours}" for a, b, hours in runs)
    skipped = sorted(d for d in calendar.holidays if first <= d <= last)
    if not skipped:
        return f"{calendar.zone.key}, {week}"
    shown = ", ".join(d.isoformat() for d in skipped[:_SHOWN_HOLIDAYS])
    more = f" and {len(skipped) - _SHOWN_HOLIDAYS} more" if len(skipped) > _SHOWN_HOLIDAYS else ""
    return f"{calendar.zone.key}, {week}, closed on holidays {shown}{more}"


def duration_words(span: timedelta) -> str:
    """'24h', '1h30m', '15m', '56d', '3s': the policy's window as people write it."""
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _day(index: int) -> str:
    return WEEKDAYS[index].capitalize()


def _when(instant: datetime) -> str:
    return instant.strftime("%a %Y-%m-%d %H:%M %Z")


@dataclass(frozen=True, slots=True)
class StoppedClock:
    """A clock a change stopped: whether it met its deadline, and how long it ran in wall and open time."""

    name: str
    severity: Severity
    met: bool
    wall: timedelta
    business: timedelta


def stopped_clocks(before: CaseState | None, after: CaseState, sla: SlaPolicy) -> list[StoppedClock]:
    """The clocks that ran before a change and are stopped after it (a first response, a resolution)."""
    if before is None:
        return []
    running = {c.name for c in clocks_of(before) if c.stopped_at is None}
    stopped = [c for c in clocks_of(after) if c.stopped_at is not None and c.name in running]
    return [_stopped(c, after, sla) for c in stopped]


def _stopped(clock: SlaClock, case: CaseState, sla: SlaPolicy) -> StoppedClock:
    """Met or not as its report judges it (a stop during a pause is judged with the paused time given back);
    its open time leaves out the time pauses took from a clock that honours them."""
    assert clock.stopped_at is not None
    judged = report(clock, case, sla, clock.stopped_at)
    met = judged.state is ClockState.MET
    return StoppedClock(
        clock.name, case.severity, met, clock.stopped_at - clock.started_at, judged.business_elapsed
    )
