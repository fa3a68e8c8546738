"""SLA windows and deadline arithmetic, on UTC instants only: each case's clocks, in business time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, InstanceOf

from service.domain.business_time import ZERO, add_business_time, business_time_between, business_warning_at
from service.domain.calendars import ALWAYS_OPEN_NAME, BusinessCalendar, always_open
from service.domain.clock_calendars import ClockCalendars, ClockCase, ClockRule
from service.domain.severity import Severity
from service.domain.signals import Channel

CLOCK_FUTURE_TIME = "clock:future_time"
CLOCK_TOO_OLD = "clock:too_old"

DEFAULT_RESOLUTION = {
    Severity.MINOR: timedelta(hours=72),
    Severity.MODERATE: timedelta(hours=48),
    Severity.MAJOR: timedelta(hours=24),
    Severity.CRITICAL: timedelta(hours=4),
}
DEFAULT_FIRST_RESPONSE = {
    Channel.SOCIAL: timedelta(minutes=15),
    Channel.CHAT: timedelta(hours=1),
    Channel.PHONE: timedelta(hours=1),
    Channel.EMAIL: timedelta(hours=4),
    Channel.WEB: timedelta(hours=4),
    Channel.IN_PERSON: timedelta(hours=4),
}


class SlaKind(StrEnum):
    """The two clocks every case has; the SLA policy file may add named ones."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


FIRST_RESPONSE = SlaKind.FIRST_RESPONSE
RESOLUTION = SlaKind.RESOLUTION
BUILT_IN_CLOCKS = (FIRST_RESPONSE, RESOLUTION)
CLOCK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""A clock's name: `first_response`, `resolution`, or one the SLA policy file defines."""

_ALWAYS_OPEN = always_open()


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaClock:
    """One clock of a case: `window` of open time in `calendar` from `window_from` makes the deadline.

    A clock without a warning point (null) warns at the configured fraction of its start to its deadline: the
    built-in clocks while no SLA policy file is in use, and clocks recorded before warning points were. One
    without a calendar (null) counts 24x7. A pause shifts a pausable clock's deadline by adding again, at
    resume, the business time it had left.
    """

    name: str
    started_at: datetime
    deadline: datetime
    warning_at: datetime | None = None
    calendar: str | None = None
    policy_version: str | None = None
    pausable: bool = True
    window: timedelta | None = None
    window_from: datetime | None = None  # None: from started_at; later when an escalation tightened it
    stopped_at: datetime | None = None  # set on the case when the clock stops; never in an event

    @property
    def counted_from(self) -> datetime:
        return self.window_from or self.started_at

    def stopped(self, at: datetime) -> SlaClock:
        """The clock stops once: a later stop changes nothing."""
        return self if self.stopped_at is not None else replace(self, stopped_at=at)


def default_clock(
    name: str, started_at: datetime, deadline: datetime, stopped_at: datetime | None = None
) -> SlaClock:
    """A built-in clock as its case's own fields give it: 24x7, its whole window from its start, no policy
    version, warning at the policy's fraction. A case stores no record of such a clock (see `is_default`)."""
    return SlaClock(
        name=name,
        started_at=started_at,
        deadline=deadline,
        calendar=ALWAYS_OPEN_NAME,
        window=deadline - started_at,
        stopped_at=stopped_at,
    )


def is_default(clock: SlaClock) -> bool:
    """Whether the clock is a built-in one its case's fields give in full (so the case need not store it):
    `clock == default_clock(its name, start, deadline, stop)`, field by field without building that clock
    (tests/unit/test_case_records.py holds the two to one answer)."""
    return (
        clock.name in BUILT_IN_CLOCKS
        and clock.warning_at is None
        and clock.calendar == ALWAYS_OPEN_NAME
        and clock.policy_version is None
        and clock.pausable
        and clock.window_from is None
        and clock.window == clock.deadline - clock.started_at
    )


class PauseReason(StrEnum):
    """Why a case waits: each reason has its own budget of paused time per case."""

    AWAITING_CUSTOMER = "awaiting_customer"
    AWAITING_PARTS = "awaiting_parts"
    AWAITING_THIRD_PARTY = "awaiting_third_party"


DEFAULT_PAUSE_BUDGETS = {  # per case, all its pauses for the reason together
    PauseReason.AWAITING_CUSTOMER: timedelta(days=5),
    PauseReason.AWAITING_PARTS: timedelta(days=10),
    PauseReason.AWAITING_THIRD_PARTY: timedelta(days=10),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseSpan:
    """One pause of a case: from `started_at` to `ended_at` (None: paused now), due to resume at `resumes_at`."""

    reason: PauseReason
    started_at: datetime
    ended_at: datetime | None = None
    until: datetime | None = None  # the end staff asked for, if any
    resumes_at: datetime | None = None  # the earlier of `until` and the reason's budget running out

    def holds(self, clock: SlaClock) -> bool:
        """A pause holds the running clocks that honour pauses and had not breached when it began."""
        return clock.pausable and clock.stopped_at is None and clock.deadline > self.started_at

    @property
    def wall_time(self) -> timedelta:
        """How long an ended pause lasted (an open one has used nothing yet)."""
        return ZERO if self.ended_at is None else self.ended_at - self.started_at


def paused_business_time(
    calendar: BusinessCalendar, pauses: Sequence[PauseSpan], since: datetime, until: datetime
) -> timedelta:
    """The open time in `calendar` within [since, until) that ended pauses covered."""
    total = ZERO
    for pause in pauses:
        if pause.ended_at is None:
            continue
        start, end = max(pause.started_at, since), min(pause.ended_at, until)
        if end > start:
            total += business_time_between(calendar, start, end)
    return total


def resumed_clock(clock: SlaClock, calendar: BusinessCalendar, pause: PauseSpan, at: datetime) -> SlaClock:
    """A pausable running clock gets back the open time the pause (ended `at`) took from its window.

    A clock that had breached when the pause began keeps its deadline; a warning point that had passed keeps
    its time. Both move by the open time from the pause's start (or the clock's, if later) to `at`.
    """
    if not pause.holds(clock):
        return clock
    credit = business_time_between(calendar, max(pause.started_at, clock.counted_from), at)
    if credit <= ZERO:
        return clock
    warning = clock.warning_at
    if warning is not None and warning > pause.started_at:
        warning = add_business_time(calendar, warning, credit)
    return replace(clock, deadline=add_business_time(calendar, clock.deadline, credit), warning_at=warning)


def deadline_at_stop(clock: SlaClock, calendar: BusinessCalendar, pauses: Sequence[PauseSpan]) -> datetime:
    """What a stopped clock is judged by: a clock that stopped during a pause that held it (a first response
    while the case waits) had the open time that pause took up to the stop given back, as a resume would."""
    stop = clock.stopped_at
    if stop is None:
        return clock.deadline
    running = replace(clock, stopped_at=None)
    for pause in pauses:
        during = pause.started_at <= stop and (pause.ended_at is None or stop < pause.ended_at)
        if during and pause.holds(running):
            return resumed_clock(running, calendar, pause, stop).deadline
    return clock.deadline


class SlaPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    resolution: dict[Severity, timedelta] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    first_response: dict[Channel, timedelta] = Field(default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE))
    default_channel: Channel = Channel.EMAIL
    warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    reopen_window: timedelta = timedelta(days=14)
    followup_after: timedelta = timedelta(hours=48)
    # Clocks start at the signal's own time unless it is this far ahead of its arrival (a wrong clock
    # upstream) or older than the maximum age (a replay or backfill, not a live failure): then at arrival.
    clock_skew: timedelta = timedelta(minutes=5)
    max_signal_age: timedelta = timedelta(days=30)
    # The SLA policy file's calendars, clock rules and version; None: every clock counts 24x7, no version.
    calendars: InstanceOf[ClockCalendars] | None = None

    def clock_rule(self, occurred_at: datetime, received_at: datetime) -> str | None:
        """The reason a signal's time is not trusted to start clocks, or None when it is."""
        ahead = occurred_at - received_at
        if ahead > self.clock_skew:
            return CLOCK_FUTURE_TIME
        if -ahead > self.max_signal_age:
            return CLOCK_TOO_OLD
        return None

    def clock_start(self, occurred_at: datetime, received_at: datetime) -> datetime:
        """Clocks start at the signal's time, or at its arrival when a clock rule distrusts that time."""
        return occurred_at if self.clock_rule(occurred_at, received_at) is None else received_at

    @property
    def version(self) -> str | None:
        return None if self.calendars is None else self.calendars.version

    def pause_budget(self, reason: PauseReason) -> timedelta:
        """The paused time (wall time, all pauses of a case) a reason may take: the policy file's, or the default."""
        budgets = {} if self.calendars is None else self.calendars.pause_budgets
        return budgets.get(reason, DEFAULT_PAUSE_BUDGETS[reason])

    def opening_clocks(self, case: ClockCase, start: datetime) -> tuple[SlaClock, ...]:
        """A case opens with a first-response and a resolution clock, and each named clock the policy selects."""
        clocks = [self.clock(FIRST_RESPONSE, case, start), self.clock(RESOLUTION, case, start)]
        named = (self.named_clock(name, case, start) for name in self.named_clocks)
        return (*clocks, *(c for c in named if c is not None))

    @property
    def named_clocks(self) -> tuple[str, ...]:
        return () if self.calendars is None else self.calendars.named_clocks

    def named_clock(self, name: str, case: ClockCase, start: datetime) -> SlaClock | None:
        """A named clock from `start` as the first rule selecting the case sets it; None when no rule does."""
        rule = None if self.calendars is None else self.calendars.rule_for(name, case)
        return None if rule is None else self._clock(name, rule, rule.calendar, _window(rule), start)

    def rerun(self, clock: SlaClock, case: ClockCase) -> SlaClock | None:
        """The clock as this policy sets it for the case from the same start (its window from the same
        instant: an escalation's signal); None when this policy selects no such named clock."""
        if clock.name in BUILT_IN_CLOCKS:
            fresh: SlaClock | None = self.clock(clock.name, case, clock.counted_from)
        else:
            fresh = self.named_clock(clock.name, case, clock.counted_from)
        if fresh is None or clock.window_from is None:
            return fresh
        return self._begun_at(fresh, clock.started_at, clock.window_from, case)

    def clock(self, name: str, case: ClockCase, start: datetime) -> SlaClock:
        """A built-in clock from `start`: the channel's or severity's window, in the calendar its rule picks."""
        window = (
            self.resolution[case.severity]
            if name == RESOLUTION
            else self.first_response[case.channel or self.default_channel]
        )
        if self.calendars is None:  # without a policy file: 24x7, warning at the configured fraction
            return default_clock(name, start, start + window)
        rule = self.calendars.rule_for(name, case)
        calendar = self.calendars.default if rule is None else rule.calendar
        return self._clock(name, rule, calendar, window, start)

    def _clock(
        self,
        name: str,
        rule: ClockRule | None,
        calendar: BusinessCalendar,
        window: timedelta,
        start: datetime,
    ) -> SlaClock:
        fraction = (
            self.warning_fraction if rule is None or rule.warning_fraction is None else rule.warning_fraction
        )
        return SlaClock(
            name=name,
            started_at=start,
            deadline=add_business_time(calendar, start, window),
            warning_at=add_business_time(calendar, start, window * fraction),
            calendar=calendar.name,
            policy_version=self.version,
            pausable=True if rule is None else rule.pausable,
            window=window,
        )

    def tightened(self, current: SlaClock, case: ClockCase, start: datetime) -> SlaClock | None:
        """An escalation moves a clock's deadline earlier, never later: the new clock, or None when it stays.

        The clock keeps its start; its warning falls at the fraction of the business time from that start.
        """
        candidate = self.clock(current.name, case, start)
        if candidate.deadline >= current.deadline:
            return None
        return self._begun_at(candidate, current.started_at, start, case)

    def _begun_at(
        self, candidate: SlaClock, begun: datetime, window_from: datetime, case: ClockCase
    ) -> SlaClock:
        """A clock whose window counts from after its start keeps the start; its warning falls at the fraction
        of the business time from that start to the deadline."""
        calendar = self.calendar(candidate.calendar)
        fraction = self._fraction(candidate.name, case)
        deadline = candidate.deadline
        if calendar.always_open or deadline <= begun:  # an earlier-dated signal: the warning is due at once
            warning = begun + (deadline - begun) * fraction
        else:
            warning = business_warning_at(calendar, begun, deadline, fraction)
        return replace(candidate, started_at=begun, window_from=window_from, warning_at=warning)

    def _fraction(self, name: str, case: ClockCase) -> float:
        rule = None if self.calendars is None else self.calendars.rule_for(name, case)
        return (
            self.warning_fraction if rule is None or rule.warning_fraction is None else rule.warning_fraction
        )

    def calendar(self, name: str | None) -> BusinessCalendar:
        """The calendar of that name in the policy; a clock set before calendars (None) counted 24x7."""
        found = None if self.calendars is None or name is None else self.calendars.named(name)
        return found or _ALWAYS_OPEN

    def warning_at(self, start: datetime, deadline: datetime) -> datetime:
        """A clock without a warning point of its own warns at the fraction of its 24x7 window."""
        return start + (deadline - start) * self.warning_fraction

    def warning_of(self, clock: SlaClock) -> datetime:
        """When a clock's pre-breach warning is due."""
        return clock.warning_at or self.warning_at(clock.started_at, clock.deadline)


def _window(rule: ClockRule) -> timedelta:
    assert rule.duration is not None, "a named clock's rule has a duration (the policy file checks it)"
    return rule.duration


def clock_name(text: str) -> str:
    """A clock's name, or ValueError."""
    if CLOCK_NAME.match(text) is None:
        raise ValueError(f"not a clock name: {text[:40]!r}")
    return text
