"""Business-time arithmetic held against a brute-force, minute-by-minute oracle across DST changes.

The oracle is independent of the fast code: it walks UTC minutes, keeps the highest local wall-clock
reading seen so far, and calls a minute open when that reading lies in a window opened on a non-holiday.
That is the documented rule ("an edge is the first instant at which the local clock shows it or later")
in its plainest form, with no zoneinfo fold handling and no interval arithmetic.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import accumulate
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.business_time import add_business_time, business_time_between, business_warning_at
from service.domain.calendars import MINUTES_PER_DAY, BusinessCalendar, OpeningWindow, always_open
from service.domain.errors import InvalidValue

MINUTE = timedelta(minutes=1)
WEEK = 7 * MINUTES_PER_DAY
BEFORE, AFTER = timedelta(days=8), timedelta(days=13)  # the oracle's span around each transition

# (zone, a day with a transition or an oddity); Apia skipped 30 December 2011 to cross the date line.
ANCHORS = [
    ("Europe/London", date(2026, 3, 29)),
    ("Europe/London", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("Asia/Kolkata", date(2026, 3, 29)),
    ("Pacific/Apia", date(2011, 12, 30)),
    ("Pacific/Apia", date(2011, 9, 24)),
    ("Pacific/Apia", date(2012, 4, 1)),
]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Span:
    """The oracle's minutes: UTC minute i is `origin + i minutes`; `walls[i]` its running-max local reading."""

    zone: ZoneInfo
    origin: datetime
    walls: tuple[tuple[int, int], ...]  # (local date ordinal, minute of day)

    def at(self, i: int) -> datetime:
        return self.origin + i * MINUTE


@cache
def span(zone_name: str, anchor: date) -> Span:
    zone = ZoneInfo(zone_name)
    origin = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC) - BEFORE
    highest = datetime.min
    walls = []
    for i in range(int((BEFORE + AFTER) / MINUTE) + 1):
        highest = max(highest, (origin + i * MINUTE).astimezone(zone).replace(tzinfo=None))
        walls.append((highest.toordinal(), highest.hour * 60 + highest.minute))
    return Span(zone, origin, tuple(walls))


def oracle_prefix(calendar: BusinessCalendar, s: Span) -> list[int]:
    """prefix[i] = open minutes among the oracle's first i minutes."""
    days: dict[int, bytearray] = {}
    for ordinal in range(s.walls[0][0] - 1, s.walls[-1][0] + 1):
        for w in calendar.opens_on(date.fromordinal(ordinal)):
            today = days.setdefault(ordinal, bytearray(MINUTES_PER_DAY))
            tomorrow = days.setdefault(ordinal + 1, bytearray(MINUTES_PER_DAY))
            today[w.start : min(w.end, MINUTES_PER_DAY)] = b"\x01" * (min(w.end, MINUTES_PER_DAY) - w.start)
            tomorrow[0 : max(w.end - MINUTES_PER_DAY, 0)] = b"\x01" * max(w.end - MINUTES_PER_DAY, 0)
    closed = bytearray(MINUTES_PER_DAY)
    return [0, *accumulate(days.get(o, closed)[m] for o, m in s.walls[:-1])]


@st.composite
def calendars(draw: st.DrawFn, zone: ZoneInfo, around: date) -> BusinessCalendar:
    """Random non-overlapping windows over the week (some across midnight) and random holidays."""
    near_change = around.weekday() * MINUTES_PER_DAY  # transitions fall in the small hours: edges there too
    edge = st.one_of(
        st.integers(0, WEEK - 1),
        st.integers(0, WEEK // 30 - 1).map(lambda k: k * 30),
        st.integers(near_change, near_change + 5 * 60),
    )
    cuts = sorted(draw(st.lists(edge, min_size=2, max_size=12, unique=True)))
    week: list[list[OpeningWindow]] = [[] for _ in range(7)]
    for opens, closes in zip(cuts[0::2], cuts[1::2], strict=False):
        day, start = divmod(opens, MINUTES_PER_DAY)
        week[day].append(OpeningWindow(start, start + min(closes - opens, MINUTES_PER_DAY - 1)))
    offsets = draw(st.lists(st.integers(-8, 13), max_size=6))
    return BusinessCalendar(
        "random", zone, tuple(map(tuple, week)), frozenset(around + timedelta(days=o) for o in offsets)
    )


@st.composite
def cases(draw: st.DrawFn, earliest: int = 2, latest: int = 9) -> tuple[BusinessCalendar, Span, int]:
    """A calendar, its oracle span, and a start minute `earliest`..`latest` days into it (the change is at 8)."""
    zone_name, anchor = draw(st.sampled_from(ANCHORS))
    s = span(zone_name, anchor)
    start = draw(st.integers(earliest * MINUTES_PER_DAY, latest * MINUTES_PER_DAY))
    return draw(calendars(s.zone, anchor)), s, start


durations = st.integers(0, 40 * 60)


@FAST
@given(cases(earliest=6), durations)
def test_a_deadline_is_the_oracles_minute(case: tuple[BusinessCalendar, Span, int], minutes: int) -> None:
    calendar, s, start = case
    prefix = oracle_prefix(calendar, s)
    reached = bisect_left(prefix, prefix[start] + minutes, lo=start)
    deadline = add_business_time(calendar, s.at(start), minutes * MINUTE)
    if reached < len(prefix):
        assert deadline == s.at(reached)
    else:  # beyond the oracle's span: the fast answer must lie beyond it too
        assert deadline > s.at(len(prefix) - 1)


@FAST
@given(cases(), st.integers(0, 12 * MINUTES_PER_DAY))
def test_open_time_between_two_minutes_is_the_oracles(
    case: tuple[BusinessCalendar, Span, int], length: int
) -> None:
    calendar, s, start = case
    prefix = oracle_prefix(calendar, s)
    end = start + length
    assert business_time_between(calendar, s.at(start), s.at(end)) == (prefix[end] - prefix[start]) * MINUTE


instants = st.datetimes(datetime(2011, 9, 1), datetime(2027, 1, 1), timezones=st.just(UTC))
spans_of_time = st.timedeltas(timedelta(0), timedelta(hours=60))


@st.composite
def calendar_anywhere(draw: st.DrawFn) -> BusinessCalendar:
    zone_name, anchor = draw(st.sampled_from(ANCHORS))
    return draw(calendars(ZoneInfo(zone_name), anchor))


@FAST
@given(calendar_anywhere(), instants, spans_of_time)
def test_the_open_time_up_to_a_deadline_is_its_duration(
    calendar: BusinessCalendar, start: datetime, d: timedelta
) -> None:
    assert business_time_between(calendar, start, add_business_time(calendar, start, d)) == d


@FAST
@given(calendar_anywhere(), instants, spans_of_time, spans_of_time)
def test_adding_twice_equals_adding_the_sum(
    calendar: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    once = add_business_time(calendar, start, d1 + d2)
    assert add_business_time(calendar, add_business_time(calendar, start, d1), d2) == once


@FAST
@given(calendar_anywhere(), instants, spans_of_time, spans_of_time, spans_of_time)
def test_deadlines_never_move_backwards(
    calendar: BusinessCalendar, start: datetime, later: timedelta, d1: timedelta, d2: timedelta
) -> None:
    short, long = sorted((d1, d2))
    assert add_business_time(calendar, start, short) <= add_business_time(calendar, start, long)
    assert add_business_time(calendar, start, short) <= add_business_time(calendar, start + later, short)


@FAST
@given(calendar_anywhere(), instants, spans_of_time, spans_of_time)
def test_open_time_adds_up_over_consecutive_spans(
    calendar: BusinessCalendar, a: datetime, x: timedelta, y: timedelta
) -> None:
    b, c = a + x, a + x + y
    total = business_time_between(calendar, a, c)
    assert business_time_between(calendar, a, b) + business_time_between(calendar, b, c) == total
    assert business_time_between(calendar, c, a) == -total


# Worked examples: the rules a reader can check by hand.

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def daily(
    zone: ZoneInfo, opens: time, closes: time | None, holidays: tuple[date, ...] = ()
) -> BusinessCalendar:
    return BusinessCalendar.weekly(
        "daily", zone, {d: [OpeningWindow.of(opens, closes)] for d in EVERY_DAY}, holidays
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local_midnight(zone: ZoneInfo, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def open_on(calendar: BusinessCalendar, day: date) -> timedelta:
    """Open time from the day's local midnight to the next (windows here never cross midnight)."""
    zone = calendar.zone
    return business_time_between(
        calendar, local_midnight(zone, day), local_midnight(zone, day + timedelta(days=1))
    )


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_a_nine_hour_window_is_nine_hours_on_a_23_or_25_hour_day(day: date) -> None:
    assert open_on(daily(LONDON, time(8), time(17)), day) == timedelta(hours=9)


def test_a_window_holding_the_whole_autumn_fold_counts_the_repeated_hour() -> None:
    assert open_on(daily(LONDON, time(0), time(3)), date(2026, 10, 25)) == timedelta(hours=4)


def test_an_edge_in_the_spring_gap_is_the_instant_the_clocks_jump() -> None:
    calendar = daily(NEW_YORK, time(2, 30), time(9))  # 02:00 EST jumps to 03:00 EDT on 8 March 2026
    assert add_business_time(calendar, utc(2026, 3, 8, 5), timedelta(0)) == utc(2026, 3, 8, 5)
    assert add_business_time(calendar, utc(2026, 3, 8, 5), MINUTE) == utc(2026, 3, 8, 7, 1)  # 03:01 EDT
    assert open_on(calendar, date(2026, 3, 8)) == timedelta(hours=6)


def test_a_window_wholly_inside_the_spring_gap_has_no_open_time() -> None:
    assert open_on(daily(NEW_YORK, time(2, 10), time(2, 50)), date(2026, 3, 8)) == timedelta(0)


def test_an_edge_in_the_autumn_fold_is_its_first_occurrence() -> None:
    calendar = daily(NEW_YORK, time(1, 30), time(5))  # 02:00 EDT falls back to 01:00 EST on 1 November 2026
    assert add_business_time(calendar, utc(2026, 11, 1, 0), MINUTE) == utc(2026, 11, 1, 5, 31)  # 01:31 EDT
    assert open_on(calendar, date(2026, 11, 1)) == timedelta(hours=4, minutes=30)


def test_a_day_that_never_happened_has_no_open_time() -> None:
    apia = ZoneInfo("Pacific/Apia")
    calendar = daily(apia, time(9), time(17))
    three_dates = business_time_between(
        calendar, local_midnight(apia, date(2011, 12, 29)), local_midnight(apia, date(2012, 1, 1))
    )
    assert three_dates == timedelta(hours=16)  # 29 and 31 December; the 30th was skipped


def test_holidays_are_closed_and_several_windows_a_day_count() -> None:
    windows = [OpeningWindow.of(time(8), time(12)), OpeningWindow.of(time(13), time(17, 30))]
    hours = {d: windows for d in EVERY_DAY[:5]} | {"sat": [OpeningWindow.of(time(9), time(13))]}
    calendar = BusinessCalendar.weekly("de", ZoneInfo("Europe/Berlin"), hours, [date(2026, 12, 25)])
    # Thursday 24 December 16:00 CET, 1.5 h before closing; Friday is a holiday, Saturday opens 09:00.
    assert add_business_time(calendar, utc(2026, 12, 24, 15), timedelta(hours=3)) == utc(2026, 12, 26, 9, 30)


def test_a_night_shift_belongs_to_the_day_it_opens() -> None:
    friday, saturday = date(2026, 12, 4), date(2026, 12, 5)
    shift = {"fri": [OpeningWindow.of(time(22), time(6))]}
    on_saturday_holiday = BusinessCalendar.weekly("night", LONDON, shift, [saturday])
    on_friday_holiday = BusinessCalendar.weekly("night", LONDON, shift, [friday])
    start = utc(2026, 12, 4, 12)
    assert add_business_time(on_saturday_holiday, start, timedelta(hours=8)) == utc(2026, 12, 5, 6)
    assert add_business_time(on_friday_holiday, start, timedelta(hours=8)) == utc(2026, 12, 12, 6)


def test_the_default_calendar_is_plain_addition() -> None:
    calendar = always_open()
    assert calendar.always_open
    assert add_business_time(calendar, utc(2026, 3, 29, 0, 30), timedelta(hours=72)) == utc(2026, 4, 1, 0, 30)
    assert daily(LONDON, time(0), None).always_open


def test_the_warning_point_is_a_fraction_of_the_open_time() -> None:
    calendar = BusinessCalendar.weekly("mon", LONDON, {"mon": [OpeningWindow.of(time(9), time(17))]})
    start = utc(2026, 12, 7, 9)
    deadline = add_business_time(calendar, start, timedelta(hours=12))
    assert deadline == utc(2026, 12, 14, 13)
    assert business_warning_at(calendar, start, deadline, 0.75) == utc(2026, 12, 14, 10)  # 8 h, then 1 h


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: OpeningWindow.of(time(8), time(8)), "hours"),
        (lambda: BusinessCalendar.weekly("x", LONDON, {}), "hours"),
        (
            lambda: BusinessCalendar.weekly("x", LONDON, {"mon": [OpeningWindow.of(time(8), time(12))] * 2}),
            "hours.mon",
        ),
        (
            lambda: BusinessCalendar.weekly(
                "x",
                LONDON,
                {"sun": [OpeningWindow.of(time(22), time(9))], "mon": [OpeningWindow.of(time(8), time(12))]},
            ),
            "hours.sun",
        ),
        (lambda: BusinessCalendar.weekly("x", LONDON, {"moon": []}), "hours"),
        (lambda: add_business_time(always_open(), datetime(2026, 1, 1), MINUTE), "start"),
        (lambda: add_business_time(always_open(), utc(2026, 1, 1), -MINUTE), "duration"),
        (
            lambda: business_warning_at(always_open(), utc(2026, 1, 1), utc(2026, 1, 2), 1.0),
            "warning_fraction",
        ),
    ],
)
def test_bad_calendars_and_inputs_are_refused_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        build()  # type: ignore[operator]
    assert refused.value.field == field
