"""Clocks that explain themselves: state, business time elapsed and left, and the one line saying why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.calendars import BusinessCalendar, OpeningWindow
from service.domain.case import CaseState, clocks_of, evolve
from service.domain.clock_calendars import ClockCalendars, ClockRule
from service.domain.clock_reports import (
    ClockState,
    clock_reports,
    describe_calendar,
    duration_words,
    stopped_clocks,
)
from service.domain.events import CaseAcknowledged
from service.domain.severity import Severity
from service.domain.sla import SlaPolicy
from tests.unit.test_sla_clocks import FRIDAY_4PM, TWENTY_FOUR_SEVEN, UK_OFFICE, opened, resolved

CHRISTMAS = BusinessCalendar.weekly(
    "uk-office-xmas",
    ZoneInfo("Europe/London"),
    {d: [OpeningWindow(9 * 60, 17 * 60 + 30)] for d in ("mon", "tue", "wed", "thu", "fri")},
    holidays=[date(2026, 12, 25), date(2026, 12, 28)],
)
SLA = SlaPolicy(
    calendars=ClockCalendars(
        version="v7",
        calendars=(UK_OFFICE, TWENTY_FOUR_SEVEN),
        rules=(ClockRule(clock="resolution", calendar=UK_OFFICE),),
    )
)


def reports(state: CaseState, now: datetime) -> dict[str, object]:
    return {r.clock.name: r for r in clock_reports(state, SLA, now)}


def test_a_clock_says_its_window_calendar_hours_start_and_due_date() -> None:
    _, state = opened(Severity.MAJOR, sla=SLA)
    resolution = clock_reports(state, SLA, FRIDAY_4PM)[1]
    assert resolution.explanation == (
        "24h of open time in calendar uk-office (Europe/London, Mon–Fri 09:00-17:30) from Fri 2026-12-04 16:00 GMT"
        " → due Wed 2026-12-09 14:30 GMT; policy v7"
    )
    first = clock_reports(state, SLA, FRIDAY_4PM)[0]
    assert first.explanation.startswith(
        "4h of open time in calendar 24x7 (UTC, always open) from Fri 2026-12-04"
    )


def test_business_time_elapsed_and_left_count_only_open_hours() -> None:
    _, state = opened(Severity.MAJOR, sla=SLA)
    monday_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    resolution = clock_reports(state, SLA, monday_10)[1]
    assert resolution.business_elapsed == timedelta(
        hours=2.5
    )  # Friday 1.5 h, Monday 1 h; the weekend is closed
    assert resolution.business_left == timedelta(hours=21.5)
    assert resolution.state is ClockState.RUNNING


def test_a_clock_is_met_when_stopped_by_its_deadline_and_breached_when_past_it() -> None:
    _, state = opened(Severity.MAJOR, sla=SLA)
    on_time = evolve(
        state, CaseAcknowledged(case_id=state.case_id, at=FRIDAY_4PM + timedelta(hours=1), actor="ana")
    )
    first = clock_reports(on_time, SLA, FRIDAY_4PM + timedelta(days=3))[0]
    assert (first.state, first.business_elapsed) == (ClockState.MET, timedelta(hours=1))
    late = evolve(
        state, CaseAcknowledged(case_id=state.case_id, at=FRIDAY_4PM + timedelta(hours=5), actor="ana")
    )
    assert clock_reports(late, SLA, FRIDAY_4PM + timedelta(days=3))[0].state is ClockState.BREACHED
    running_late = clock_reports(state, SLA, FRIDAY_4PM + timedelta(hours=5))[0]
    assert (running_late.state, running_late.business_left) == (ClockState.BREACHED, timedelta(0))


def test_a_resolved_case_shows_its_clocks_met_and_stopped_counting() -> None:
    _, state = opened(Severity.MAJOR, sla=SLA)
    done = evolve(state, resolved(state, FRIDAY_4PM + timedelta(minutes=30)))
    later = reports(done, FRIDAY_4PM + timedelta(days=30))
    assert {name: r.state for name, r in later.items()} == {  # type: ignore[attr-defined]
        "first_response": ClockState.MET,
        "resolution": ClockState.MET,
    }
    assert later["resolution"].business_elapsed == timedelta(minutes=30)  # type: ignore[attr-defined]


def test_a_case_without_a_policy_file_keeps_no_clock_record_and_explains_its_24x7_clocks() -> None:
    event, state = opened(Severity.MAJOR, sla=SlaPolicy())
    assert state.clocks == ()  # the case's own fields give both clocks in full
    assert [c.calendar for c in event.clocks or ()] == ["24x7", "24x7"]  # case.opened still lists them
    [first, resolution] = clock_reports(state, SLA, FRIDAY_4PM)
    assert first.explanation.startswith("4h of open time in calendar 24x7 (UTC, always open) from Fri")
    assert [c.policy_version for c in clocks_of(state)] == [None, None]
    assert [c.warning_at for c in clocks_of(state)] == [None, None]  # at the configured fraction
    assert clocks_of(state) == event.clocks


def test_a_calendar_names_the_holidays_its_deadline_skips() -> None:
    text = describe_calendar(CHRISTMAS, date(2026, 12, 24), date(2026, 12, 29))
    assert text == "Europe/London, Mon–Fri 09:00-17:30, closed on holidays 2026-12-25, 2026-12-28"


def test_windows_read_as_people_write_them() -> None:
    assert [
        duration_words(timedelta(hours=24)),
        duration_words(timedelta(weeks=8)),
        duration_words(timedelta(minutes=90)),
        duration_words(timedelta(seconds=3)),
    ] == ["24h", "56d", "1h30m", "3s"]


def test_a_change_reports_the_clocks_it_stopped_met_or_breached_in_wall_and_open_time() -> None:
    _, state = opened(Severity.MAJOR, sla=SLA)
    monday_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    acknowledged = evolve(state, CaseAcknowledged(case_id=state.case_id, at=monday_10, actor="ana"))
    [first] = stopped_clocks(state, acknowledged, SLA)
    assert (first.name, first.severity, first.met) == ("first_response", Severity.MAJOR, False)  # 4 h, 24x7
    assert first.wall == first.business == monday_10 - FRIDAY_4PM
    done = evolve(acknowledged, resolved(acknowledged, monday_10))
    [resolution] = stopped_clocks(acknowledged, done, SLA)
    assert (resolution.name, resolution.met) == ("resolution", True)
    assert (resolution.wall, resolution.business) == (monday_10 - FRIDAY_4PM, timedelta(hours=2.5))
    assert stopped_clocks(done, done, SLA) == [] and stopped_clocks(None, state, SLA) == []
