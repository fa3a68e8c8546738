"""What the console shows of a case: its clocks' states, time left and its severity's reasons (its history: timeline.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.app.reads import CaseRead
from service.domain.case import CaseState
from service.domain.clock_reports import ClockReport, ClockState, clock_reports
from service.domain.sla import SlaPolicy

# worst first: the queue shows a case's worst running clock
STATES = ("breached", "warned", "on time", "paused", "stopped")


@dataclass(frozen=True)
class Clock:
    name: str
    deadline: datetime
    state: str  # one of STATES
    stopped_at: datetime | None
    calendar: str = "24x7"
    explanation: str = ""  # why it is due when it is: its window, calendar and hours
    late: bool = False  # stopped after its deadline (the deadline its pauses gave it): the breach stays on record

    @property
    def running(self) -> bool:
        return self.state != "stopped"


def clocks(case: CaseState, sla: SlaPolicy, now: datetime) -> list[Clock]:
    """Every clock as the API reports it (domain clock_reports), in the console's words: first response (stops
    at the first contact), resolution (at the resolution), named ones."""
    return [_clock(r, sla, now) for r in clock_reports(case, sla, now)]


def _clock(report: ClockReport, sla: SlaPolicy, now: datetime) -> Clock:
    clock = report.clock
    name = clock.name.replace("_", " ").capitalize()
    stopped = report.state in (ClockState.STOPPED, ClockState.MET) or clock.stopped_at is not None
    if stopped:
        state = "stopped"
    elif report.state is ClockState.PAUSED:  # its deadline moves when the case resumes
        state = "paused"
    elif report.state is ClockState.BREACHED:
        state = "breached"
    elif now >= sla.warning_of(clock):
        state = "warned"
    else:
        state = "on time"
    return Clock(
        name,
        clock.deadline,
        state,
        clock.stopped_at,
        report.calendar.name,
        report.explanation,
        late=stopped and report.state is ClockState.BREACHED,
    )


def next_clock(case: CaseState, sla: SlaPolicy, now: datetime) -> Clock:
    """The clock the queue orders by (domain next_deadline: a running clock not paused, due soonest; else a
    paused one; the resolution clock when none runs), with the case's worst state."""
    all_clocks = clocks(case, sla, now)
    running = [c for c in all_clocks if c.running] or all_clocks[1:2]
    ticking = [c for c in running if c.state != "paused"]
    soonest = min(ticking or running, key=lambda c: c.deadline)
    worst = min((c.state for c in running), key=STATES.index)
    return Clock(soonest.name, soonest.deadline, worst, soonest.stopped_at)


def time_left(deadline: datetime, now: datetime) -> str:
    """'2h 05m left' or 'overdue by 3m': what the countdown script also writes, second by second."""
    left = deadline - now
    words = _span(abs(left))
    return f"{words} left" if left >= timedelta(0) else f"overdue by {words}"


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


def severity_reasons(case: CaseRead) -> list[str]:
    """The rules that fired on the case's signals, each once, in the order they first fired."""
    seen: dict[str, None] = {}
    for signal in case.signals:
        for reason in signal.reasons:
            seen.setdefault(reason, None)
    return list(seen)
