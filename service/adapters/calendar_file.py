"""Holiday dates from the outside world, resolved before the domain sees them.

Public holidays come from the `holidays` package (offline data, by country and subdivision); closures
from an iCalendar file are read with `icalendar` (it unfolds long lines, reads parameters and DATE
values properly, which a hand-written line matcher gets wrong). Only whole-day, non-recurring events are
accepted: a timed event or an RRULE is refused naming the event rather than half-understood.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

import holidays
import icalendar


class CalendarFileError(ValueError):
    """Holidays that cannot be resolved; the message names the country, file or event."""


def public_holidays(country: str, subdivision: str | None, years: Iterable[int]) -> frozenset[date]:
    """The public holidays of a country (and subdivision) in the given years."""
    try:
        table = holidays.country_holidays(country, subdiv=subdivision, years=list(years))
    except NotImplementedError as e:
        raise CalendarFileError(str(e)) from e
    return frozenset(table.keys())


def ical_holidays(path: Path) -> frozenset[date]:
    """Every date an all-day VEVENT in the file covers (DTEND is exclusive, as RFC 5545 says)."""
    try:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
    except (OSError, ValueError) as e:
        raise CalendarFileError(
            f"{path}: not a readable iCalendar file ({getattr(e, 'strerror', None) or e})"
        ) from e
    days: set[date] = set()
    for event in calendar.walk("VEVENT"):
        days |= _event_days(path, event)
    return frozenset(days)


def _event_days(path: Path, event: icalendar.cal.Component) -> set[date]:
    name = f"{path}: event {str(event.get('SUMMARY') or event.get('UID') or '?')!r}"
    if event.get("RRULE") is not None or event.get("RDATE") is not None:
        raise CalendarFileError(f"{name}: recurring events are not supported; list each date")
    if event.get("DTSTART") is None:
        raise CalendarFileError(f"{name}: has no DTSTART")
    first = event.get("DTSTART").dt
    if isinstance(first, datetime) or not isinstance(first, date):
        raise CalendarFileError(f"{name}: only whole-day events (DTSTART;VALUE=DATE) close a calendar")
    end = event.get("DTEND").dt if event.get("DTEND") is not None else None
    if end is None and event.get("DURATION") is not None:
        end = first + event.get("DURATION").dt
    if isinstance(end, datetime) or (end is not None and end <= first):
        raise CalendarFileError(f"{name}: DTEND must be a later date")
    last = (end or first + timedelta(days=1)) - timedelta(days=1)
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}
