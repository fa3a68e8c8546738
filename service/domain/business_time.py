"""Exact business-time arithmetic on UTC instants: deadlines, elapsed open time, warning points.

Each local day's windows become UTC intervals once (memoised per calendar and day, with the day's total);
the arithmetic walks days, skips whole days it passes, and looks at windows only where it stops: never
minutes. Wall-clock edges resolve to the first instant at which the calendar's local clock shows that
time or later on that date:
- a time that exists twice (autumn fold) is its first occurrence, as zoneinfo's fold=0 reads it;
- a time that does not exist (spring gap) is the instant the clocks jump, when the wall clock first
  passes it. zoneinfo would read it one gap later (fold=0) or one gap earlier (fold=1); both would make
  a window that lies wholly in the gap count open time that no clock on the wall ever showed.
So a window `08:00-17:00` is 9 hours on a 23- or 25-hour day, and a window holding the whole fold
(`00:00-03:00` in London in October) is 4 hours of real open time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from service.domain.calendars import BusinessCalendar
from service.domain.errors import InvalidValue

ZERO = timedelta(0)
ONE_DAY = timedelta(days=1)
# A finite holiday list always leaves some open day; this only stops a runaway search on absurd input.
MAX_SEARCH_DAYS = 366 * 200

Interval = tuple[datetime, datetime]


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The deadline: the earliest instant by which `duration` of open time has passed since `start`."""
    start = _utc(start, "start")
    if duration < ZERO:
        raise InvalidValue("a business duration cannot be negative", field="duration")
    if calendar.always_open or duration == ZERO:
        return start + duration
    left = duration
    for day in _days_from(calendar, start):
        if day.opens >= start and left > day.total:
            left -= day.total  # the whole day passes: skip its windows
            continue
        for opens, closes in day.intervals:
            if closes <= start:
                continue
            opens = max(opens, start)
            if left <= closes - opens:
                return opens + left
            left -= closes - opens
    raise InvalidValue(
        f"calendar {calendar.name}: no open time within {MAX_SEARCH_DAYS} days", field="duration"
    )


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Open time from `a` to `b`; negative when `b` is before `a`."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b < a:
        return -business_time_between(calendar, b, a)
    if calendar.always_open:
        return b - a
    total = ZERO
    for day in _days_from(calendar, a):
        if day.opens >= b:
            break
        if day.opens >= a and day.closes <= b:
            total += day.total
            continue
        for opens, closes in day.intervals:
            total += max(min(closes, b) - max(opens, a), ZERO)
    return total


def business_warning_at(
    calendar: BusinessCalendar, start: datetime, deadline: datetime, fraction: float
) -> datetime:
    """A pre-breach warning fires once `fraction` of the window's open time has passed."""
    if not 0 < fraction < 1:
        raise InvalidValue(
            f"a warning fraction lies strictly between 0 and 1, got {fraction}", field="warning_fraction"
        )
    return add_business_time(calendar, start, business_time_between(calendar, start, deadline) * fraction)


class OpenDay(NamedTuple):
    """The UTC intervals of the windows that open on one local date, with their span and total."""

    intervals: tuple[Interval, ...]
    opens: datetime
    closes: datetime
    total: timedelta


def _days_from(calendar: BusinessCalendar, start: datetime) -> Iterator[OpenDay]:
    """The days with open time ending after `start`, in order (lazily: a deadline stops early)."""
    # Two days back: a window that opened yesterday may still be open (midnight crossing, zone jumps).
    first = start.astimezone(calendar.zone).date().toordinal() - 2
    for ordinal in range(first, first + MAX_SEARCH_DAYS):
        day = open_day(calendar, ordinal)
        if day is not None and day.closes > start:
            yield day


@lru_cache(maxsize=16384)  # about 45 years of days for one calendar; a few MB at most
def open_day(calendar: BusinessCalendar, ordinal: int) -> OpenDay | None:
    """The open time of the windows that open on one local date (by ordinal); None when there is none."""
    day = date.fromordinal(ordinal)
    midnight = datetime(day.year, day.month, day.day)
    spans = (
        (
            _edge(calendar.zone, midnight + timedelta(minutes=w.start)),
            _edge(calendar.zone, midnight + timedelta(minutes=w.end)),
        )
        for w in calendar.opens_on(day)
    )
    intervals = tuple((a, b) for a, b in spans if a < b)
    if not intervals:
        return None
    return OpenDay(intervals, intervals[0][0], intervals[-1][1], sum((b - a for a, b in intervals), ZERO))


def _edge(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first UTC instant at which the local clock shows `wall` or later."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap fold=1 reads `wall` with the offset after the jump (an instant before it), fold=0 with the
    # offset before (an instant after it): the jump lies between; zones jump on whole seconds.
    before = math.floor(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = math.ceil(first.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _utc(instant: datetime, name: str) -> datetime:
    if instant.utcoffset() is None:
        raise InvalidValue(f"{name} must be an aware instant, not a naive wall-clock time", field=name)
    return instant.astimezone(UTC)
