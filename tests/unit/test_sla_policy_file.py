"""The SLA policy file: the sample loads into domain objects; bad files are refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.adapters.calendar_file import CalendarFileError, ical_holidays
from service.adapters.sla_policy_file import SlaPolicyFileError, load_sla_policy
from service.bootstrap import intake_rules
from service.config import Settings
from service.domain.business_time import add_business_time
from service.domain.clock_calendars import ClockCase
from service.domain.severity import Severity
from service.domain.signals import Category, Channel, SignalKind, Tier
from service.domain.sla import PauseReason, SlaPolicy
from tests.unit.conftest import Serve

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sla-policy.json"


def test_the_sample_policy_loads_with_every_kind_of_holiday() -> None:
    policy = load_sla_policy(SAMPLE)
    support = policy.named("support-de")
    assert policy.version == "2026-12-01"
    assert support is not None and support.zone.key == "Europe/Berlin"
    assert date(2026, 12, 24) in support.holidays  # listed in the file
    assert date(2026, 1, 6) in support.holidays  # Epiphany: public in Bavaria
    assert date(2026, 7, 15) in support.holidays  # the second day of the iCalendar stocktake
    assert date(2026, 7, 16) not in support.holidays  # DTEND is exclusive
    assert [str(w) for w in support.week[0]] == ["08:00-12:00", "13:00-17:30"]
    assert SlaPolicy(calendars=policy).pause_budget(PauseReason.AWAITING_CUSTOMER) == timedelta(days=7)


def test_each_clock_gets_the_first_matching_rules_calendar() -> None:
    policy = load_sla_policy(SAMPLE)
    critical = ClockCase(severity=Severity.CRITICAL, channel=Channel.PHONE)
    phone = ClockCase(severity=Severity.MINOR, channel=Channel.PHONE, tier=Tier.STANDARD)
    gold_phone = ClockCase(severity=Severity.MINOR, channel=Channel.PHONE, tier=Tier.GOLD)
    assert policy.calendar_for("first_response", critical).always_open
    assert policy.calendar_for("first_response", phone).name == "night-desk-uk"
    assert policy.calendar_for("first_response", gold_phone).name == "support-de"
    assert policy.calendar_for("resolution", ClockCase(severity=Severity.MAJOR)).always_open  # no rule: 24x7


def test_the_sample_calendar_counts_business_hours_over_christmas() -> None:
    support = load_sla_policy(SAMPLE).named("support-de")
    assert support is not None
    # Wednesday 23 December 2026, 17:00 CET: 30 minutes left; 24th to 27th closed; Monday 28th from 08:00.
    assert add_business_time(support, datetime(2026, 12, 23, 16, tzinfo=UTC), timedelta(hours=1)) == datetime(
        2026, 12, 28, 7, 30, tzinfo=UTC
    )


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "sla.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def minimal(**calendar: Any) -> dict[str, Any]:
    spec = {"time_zone": "Europe/London", "hours": {"mon": ["09:00-17:00"]}} | calendar
    return {
        "version": "1",
        "calendars": {"office": spec},
        "clocks": [{"clock": "resolution", "calendar": "office"}],
    }


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"calendars": {}}, "version"),
        (minimal(time_zone="Europe/Londres"), "calendars.office.time_zone"),
        (minimal(hours={"mon": ["9:00-17:00"]}), "calendars.office.hours.mon.0"),
        (minimal(hours={"mon": ["09:00-09:00"]}), "calendars.office.hours.mon.0"),
        (minimal(hours={"monday": ["09:00-17:00"]}), "calendars.office.hours.monday"),
        (minimal(hours={"mon": ["09:00-13:00", "12:00-17:00"]}), "hours.mon"),
        (minimal(hours={}), "calendars.office"),
        (minimal(holidays={"dates": ["2026-02-30"]}), "calendars.office.holidays.dates.0"),
        (
            minimal(holidays={"public": [{"country": "XX", "first_year": 2026, "last_year": 2027}]}),
            "holidays.public.0",
        ),
        (
            minimal(holidays={"public": [{"country": "DE", "first_year": 2027, "last_year": 2026}]}),
            "holidays.public.0",
        ),
        (minimal(holidays={"ical_files": ["missing.ics"]}), "holidays.ical_files.0"),
        (minimal(opening="09:00"), "calendars.office.opening"),
        (minimal() | {"clocks": [{"clock": "resolution", "calendar": "shop"}]}, "clocks.0.calendar"),
        (
            minimal()
            | {"clocks": [{"clock": "resolution", "calendar": "office", "when": {"severity": ["huge"]}}]},
            "clocks.0.when.severity.0",
        ),
        (minimal() | {"clocks": [{"clock": "Resolution!", "calendar": "office"}]}, "clocks.0.clock"),
        (minimal() | {"default_calendar": "shop"}, "default_calendar"),
        (minimal() | {"calendars": {"24x7": minimal()["calendars"]["office"]}}, "calendars.24x7"),
        (minimal() | {"pause_budgets": {"awaiting_godot": "P1D"}}, "pause_budgets.awaiting_godot"),
        (minimal() | {"pause_budgets": {"awaiting_parts": "PT0S"}}, "pause_budgets"),
        (minimal() | {"pause_budgets": {"awaiting_parts": "soon"}}, "pause_budgets.awaiting_parts"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_field(
    tmp_path: Path, document: dict[str, Any], field: str
) -> None:
    with pytest.raises(SlaPolicyFileError) as refused:
        load_sla_policy(write(tmp_path, document))
    assert field in str(refused.value)


def test_pause_budgets_are_iso_durations_and_a_reason_not_named_keeps_its_default(tmp_path: Path) -> None:
    loaded = load_sla_policy(write(tmp_path, minimal() | {"pause_budgets": {"awaiting_parts": "P3D"}}))
    sla = SlaPolicy(calendars=loaded)
    assert sla.pause_budget(PauseReason.AWAITING_PARTS) == timedelta(days=3)
    assert sla.pause_budget(PauseReason.AWAITING_CUSTOMER) == timedelta(days=5)


def test_an_unreadable_policy_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SlaPolicyFileError, match="absent.json"):
        load_sla_policy(tmp_path / "absent.json")


def ical(tmp_path: Path, *event_lines: str) -> Path:
    path = tmp_path / "closures.ics"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:test",
        "BEGIN:VEVENT",
        "UID:e1",
        "SUMMARY:Closed",
        *event_lines,
    ]
    path.write_text("\r\n".join([*lines, "END:VEVENT", "END:VCALENDAR", ""]), encoding="utf-8")
    return path


def test_an_ical_event_without_an_end_closes_one_day_and_a_duration_closes_several(tmp_path: Path) -> None:
    assert ical_holidays(ical(tmp_path, "DTSTART;VALUE=DATE:20260301")) == {date(2026, 3, 1)}
    days = ical_holidays(ical(tmp_path, "DTSTART;VALUE=DATE:20260301", "DURATION:P2D"))
    assert days == {date(2026, 3, 1), date(2026, 3, 2)}


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (("DTSTART;VALUE=DATE:20260301", "RRULE:FREQ=YEARLY"), "recurring"),
        (("DTSTART:20260301T090000Z",), "whole-day"),
        (("DTSTART;VALUE=DATE:20260301", "DTEND;VALUE=DATE:20260301"), "DTEND"),
        ((), "DTSTART"),
    ],
)
def test_ical_events_the_calendar_cannot_honour_are_refused_naming_the_event(
    tmp_path: Path, lines: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(CalendarFileError, match=reason) as refused:
        ical_holidays(ical(tmp_path, *lines))
    assert "'Closed'" in str(refused.value)


def test_the_sample_defines_a_regulatory_clock_selected_by_kind_and_category() -> None:
    policy = load_sla_policy(SAMPLE)
    payment = ClockCase(severity=Severity.MINOR, kind=SignalKind.COMPLAINT, category=Category.BILLING_ERROR)
    other = ClockCase(severity=Severity.MINOR, kind=SignalKind.COMPLAINT, category=Category.SERVICE_DELAY)
    assert policy.named_clocks == ("regulatory_final_response",)
    fifteen_days = policy.rule_for("regulatory_final_response", payment)
    eight_weeks = policy.rule_for("regulatory_final_response", other)
    assert fifteen_days is not None and eight_weeks is not None
    assert (fifteen_days.calendar.name, fifteen_days.duration, fifteen_days.pausable) == (
        "uk-business-days",
        timedelta(days=15),
        False,
    )
    assert (eight_weeks.duration, eight_weeks.warning_fraction) == (timedelta(weeks=8), 0.5)
    assert policy.rule_for("regulatory_final_response", ClockCase(severity=Severity.MINOR)) is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"clock": "resolution", "calendar": "24x7", "duration": "PT4H"}, "takes its duration from"),
        ({"clock": "regulatory_final_response", "calendar": "24x7"}, "needs a duration"),
        ({"clock": "regulatory_final_response", "calendar": "24x7", "duration": "-PT4H"}, "positive"),
        ({"clock": "Final Response", "calendar": "24x7", "duration": "P1D"}, "clocks.0.clock"),
        ({"clock": "x", "calendar": "24x7", "duration": "P1D", "warning_fraction": 1.0}, "warning_fraction"),
    ],
)
def test_a_clock_rule_is_refused_naming_what_is_wrong(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, {"version": "v1", "clocks": [rule]})
    with pytest.raises(SlaPolicyFileError, match=message):
        load_sla_policy(path)


def test_the_policy_file_setting_reaches_the_sla_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SLA_POLICY_FILE", str(SAMPLE))
    sla = intake_rules(Settings()).sla
    assert sla.version == "2026-12-01"
    assert sla.calendar("support-de").name == "support-de"
    monkeypatch.delenv("RECOVERY_SLA_POLICY_FILE")
    assert intake_rules(Settings()).sla.calendars is None  # unset: every clock counts 24x7, no version


def test_a_bad_policy_file_stops_start_up_with_the_loaders_message(tmp_path: Path, serve: Serve) -> None:
    path = write(tmp_path, {"version": "v1", "clocks": [{"clock": "resolution", "calendar": "nowhere"}]})
    run = serve({"RECOVERY_SLA_POLICY_FILE": str(path)})
    assert run.returncode == 2
    assert "RECOVERY_SLA_POLICY_FILE" in run.stderr
    assert "clocks.0.calendar: no calendar named 'nowhere'" in run.stderr
