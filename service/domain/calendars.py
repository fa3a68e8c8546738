"""Business calendars as data: a time zone, weekly opening hours and holidays.

The domain receives holidays already resolved to dates (public holidays and iCalendar files are read by
an adapter); it never reads a file. Rules this module fixes, and `business_time` relies on:

- Opening hours are local wall-clock windows, minute precision, several per day, none overlapping.
- A window whose end is not after its start crosses midnight (`22:00-06:00` runs into the next day;
  an end of `00:00` means midnight). It belongs to the day it opens on: a night shift that starts on a
  working day runs to its end even when the next day is a holiday, and none starts on a holiday.
  A window lasts at most 24 hours; `08:00-08:00` is refused as ambiguous (a whole day is `00:00-24:00`).
- The default calendar is 24x7: always open, no holidays, whatever the zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from zoneinfo import ZoneInfo

from service.domain.errors import InvalidValue

MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_OPEN_NAME = "24x7"


@dataclass(frozen=True, slots=True)
class OpeningWindow:
    """Open from `start` to `end` minutes after the opening day's local midnight (end may pass midnight)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY or not self.start < self.end <= self.start + MINUTES_PER_DAY:
            raise InvalidValue(f"not an opening window: {self.start}-{self.end} minutes", field="hours")

    @classmethod
    def of(cls, start: time, end: time | None) -> OpeningWindow:
        """A window from wall-clock times; an end at or before the start crosses midnight, None is 24:00."""
        if start.second or start.microsecond or (end is not None and (end.second or end.microsecond)):
            raise InvalidValue("opening hours are whole minutes", field="hours")
        first = start.hour * 60 + start.minute
        last = MINUTES_PER_DAY if end is None else end.hour * 60 + end.minute
        if last == first:
            raise InvalidValue(f"an empty or 24-hour window {start:%H:%M}-{start:%H:%M}", field="hours")
        return cls(first, last if last > first else last + MINUTES_PER_DAY)

    def __str__(self) -> str:
        end = self.end % MINUTES_PER_DAY if self.end != MINUTES_PER_DAY else MINUTES_PER_DAY
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


Week = tuple[tuple[OpeningWindow, ...], ...]
FULL_DAY = OpeningWindow(0, MINUTES_PER_DAY)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """A named calendar: the zone its hours are read in, windows per weekday (Monday first), holidays."""

    name: str
    zone: ZoneInfo
    week: Week
    holidays: frozenset[date] = frozenset()
    always_open: bool = field(init=False, compare=False, repr=False)
    _hash: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise InvalidValue(f"opening hours need 7 days, got {len(self.week)}", field="hours")
        week = tuple(tuple(sorted(day, key=lambda w: w.start)) for day in self.week)
        _refuse_overlaps(self.name, week)
        if not any(week):
            raise InvalidValue("never open: no opening hours", field="hours")
        object.__setattr__(self, "week", week)
        object.__setattr__(self, "always_open", not self.holidays and all(d == (FULL_DAY,) for d in week))
        # Hashed once: business-time arithmetic memoises per (calendar, day), so the hash is on the hot path.
        object.__setattr__(self, "_hash", hash((self.name, self.zone.key, week, self.holidays)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def weekly(
        cls,
        name: str,
        zone: ZoneInfo,
        hours: Mapping[str, Iterable[OpeningWindow]],
        holidays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """A calendar from hours keyed `mon`..`sun`; a day not named is closed."""
        unknown = set(hours) - set(WEEKDAYS)
        if unknown:
            raise InvalidValue(f"unknown weekday {sorted(unknown)}", field="hours")
        return cls(name, zone, tuple(tuple(hours.get(d, ())) for d in WEEKDAYS), frozenset(holidays))

    def opens_on(self, day: date) -> tuple[OpeningWindow, ...]:
        """The windows that open on this local date: none on a holiday."""
        return () if day in self.holidays else self.week[day.weekday()]


def always_open(name: str = ALWAYS_OPEN_NAME, zone: ZoneInfo | None = None) -> BusinessCalendar:
    """The 24x7 calendar: every clock counts every instant, as before calendars existed."""
    return BusinessCalendar(name, zone or ZoneInfo("UTC"), tuple((FULL_DAY,) for _ in WEEKDAYS))


def _refuse_overlaps(name: str, week: Week) -> None:
    """Windows may touch but not overlap, including a late window running into the next day's first."""
    week_minutes = 7 * MINUTES_PER_DAY
    spans = sorted(
        (i * MINUTES_PER_DAY + w.start, i * MINUTES_PER_DAY + w.end, i) for i, d in enumerate(week) for w in d
    )
    following = [start for start, _, _ in spans[1:]] + [start + week_minutes for start, _, _ in spans[:1]]
    for (_, end, day), start in zip(spans, following, strict=True):
        if end > start:
            raise InvalidValue(f"windows overlap on {WEEKDAYS[day]}", field=f"hours.{WEEKDAYS[day]}")
