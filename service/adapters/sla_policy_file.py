"""The SLA policy file (RECOVERY_SLA_POLICY_FILE, read once at start-up): named calendars, each clock's calendar,
and named clocks beyond the two built-in ones.

The wire models are strict (unknown keys, wrong
types and bad values are refused) and every error names its field; `load_sla_policy` resolves holidays
(public ones, iCalendar files relative to the policy file) and returns domain objects.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from service.adapters.calendar_file import CalendarFileError, ical_holidays, public_holidays
from service.adapters.policy_file import read_document
from service.domain.calendars import ALWAYS_OPEN_NAME, BusinessCalendar, OpeningWindow, always_open
from service.domain.clock_calendars import ClockCalendars, ClockRule
from service.domain.errors import InvalidValue
from service.domain.severity import Severity
from service.domain.signals import Category, Channel, SignalKind, Tier
from service.domain.sla import BUILT_IN_CLOCKS, CLOCK_NAME, DEFAULT_PAUSE_BUDGETS, PauseReason

WINDOW = re.compile(r"^(?P<start>([01]\d|2[0-3]):[0-5]\d)-(?P<end>([01]\d|2[0-3]):[0-5]\d|24:00)$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class SlaPolicyFileError(ValueError):
    """The SLA policy file cannot be read or is invalid; the message names the file and each field."""


def parse_window(text: str) -> OpeningWindow:
    """`HH:MM-HH:MM`; an end at or before the start crosses midnight, `24:00` is the end of the day."""
    match = WINDOW.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a window HH:MM-HH:MM")
    end = match["end"]
    try:
        return OpeningWindow.of(
            time.fromisoformat(match["start"]), None if end == "24:00" else time.fromisoformat(end)
        )
    except InvalidValue as e:
        raise ValueError(e.detail) from e


def _window(text: str) -> str:
    parse_window(text)
    return text


def _zone(key: str) -> str:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"{key!r} is not an IANA time zone") from e
    return key


def _days(duration: timedelta) -> str:
    return f"P{duration.days}D"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PublicHolidays(_Strict):
    country: str = Field(
        pattern=r"^[A-Z]{2,3}$", description="ISO 3166 code, as the `holidays` package knows it"
    )
    subdivision: str | None = Field(default=None, min_length=1, description="e.g. `BY` for Bavaria")
    first_year: int = Field(ge=1950, le=2200)
    last_year: int = Field(
        ge=1950, le=2200, description="holidays after this year are working days: keep it ahead"
    )

    @model_validator(mode="after")
    def _years_in_order(self) -> PublicHolidays:
        if self.last_year < self.first_year:
            raise ValueError("last_year is before first_year")
        return self


class Holidays(_Strict):
    dates: list[date] = Field(default_factory=list)
    public: list[PublicHolidays] = Field(default_factory=list)
    ical_files: list[str] = Field(default_factory=list, description="paths relative to the policy file")


class CalendarSpec(_Strict):
    time_zone: Annotated[str, AfterValidator(_zone)] = Field(description="IANA zone the hours are read in")
    hours: dict[Weekday, list[Annotated[str, AfterValidator(_window)]]] = Field(
        description="a day not named is closed"
    )
    holidays: Holidays = Field(default_factory=Holidays)

    @model_validator(mode="after")
    def _hours_make_a_calendar(self) -> CalendarSpec:
        try:
            self.calendar("check", frozenset())
        except InvalidValue as e:
            raise ValueError(f"{e.field}: {e.detail}") from e
        return self

    def calendar(self, name: str, holidays: frozenset[date]) -> BusinessCalendar:
        hours: dict[str, list[OpeningWindow]] = {
            d: [parse_window(w) for w in ws] for d, ws in self.hours.items()
        }
        return BusinessCalendar.weekly(name, ZoneInfo(self.time_zone), hours, holidays)


class ClockWhen(_Strict):
    """Every list that is not empty must contain the case's value; empty lists match anything."""

    severity: list[Severity] = Field(default_factory=list)
    channel: list[Channel] = Field(default_factory=list)
    kind: list[SignalKind] = Field(default_factory=list)
    category: list[Category] = Field(default_factory=list)
    tier: list[Tier] = Field(default_factory=list)


class ClockRuleSpec(_Strict):
    clock: str = Field(
        pattern=CLOCK_NAME.pattern, description="`first_response`, `resolution`, or a named clock"
    )
    when: ClockWhen = Field(default_factory=ClockWhen)
    calendar: str = Field(description=f"a calendar defined in this file, or `{ALWAYS_OPEN_NAME}`")
    duration: timedelta | None = Field(
        default=None,
        description="ISO 8601 open time a named clock allows (`P56D`); the two built-in clocks take theirs"
        " from RECOVERY_SLA_FIRST_RESPONSE and RECOVERY_SLA_RESOLUTION",
    )
    warning_fraction: float | None = Field(
        default=None, gt=0, lt=1, description="unset: RECOVERY_SLA_WARNING_FRACTION"
    )
    pausable: bool = Field(default=True, description="whether a pause of the case stops this clock")

    @model_validator(mode="after")
    def _named_clocks_have_a_duration(self) -> ClockRuleSpec:
        built_in = self.clock in BUILT_IN_CLOCKS
        if built_in and self.duration is not None:
            raise ValueError(
                f"{self.clock} takes its duration from the RECOVERY_SLA_* settings, not the file"
            )
        if not built_in and self.duration is None:
            raise ValueError(f"the named clock {self.clock} needs a duration")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("a duration is positive")
        return self


class SlaPolicyDocument(_Strict):
    version: str = Field(min_length=1, description="recorded with every deadline this policy sets")
    calendars: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], CalendarSpec] = Field(
        default_factory=dict
    )
    clocks: list[ClockRuleSpec] = Field(default_factory=list, description="in order: the first match decides")
    default_calendar: str = ALWAYS_OPEN_NAME
    pause_budgets: dict[PauseReason, timedelta] = Field(
        default_factory=dict,
        description="ISO 8601 paused time (wall time) each pause reason may take per case, all its pauses"
        " together (`P5D`); a reason not named keeps its default: "
        + ", ".join(f"{r} {_days(d)}" for r, d in DEFAULT_PAUSE_BUDGETS.items()),
    )

    @model_validator(mode="after")
    def _budgets_are_positive(self) -> SlaPolicyDocument:
        spent = sorted(reason for reason, budget in self.pause_budgets.items() if budget <= timedelta(0))
        if spent:
            raise ValueError(f"pause_budgets: a budget is positive ({', '.join(spent)})")
        return self


def load_sla_policy(path: Path) -> ClockCalendars:
    """The calendars and clock rules in the file, holidays resolved, as domain objects."""
    document = read_document(path, SlaPolicyDocument, SlaPolicyFileError)
    calendars = {name: _calendar(path, name, spec) for name, spec in document.calendars.items()}
    if ALWAYS_OPEN_NAME in calendars:
        raise SlaPolicyFileError(
            f"{path}: calendars.{ALWAYS_OPEN_NAME}: the name is reserved for the built-in 24x7"
        )
    calendars[ALWAYS_OPEN_NAME] = always_open()
    rules = tuple(_rule(path, f"clocks.{i}", spec, calendars) for i, spec in enumerate(document.clocks))
    default = _named(path, "default_calendar", document.default_calendar, calendars)
    return ClockCalendars(
        version=document.version,
        calendars=tuple(calendars.values()),
        rules=rules,
        default=default,
        pause_budgets={reason.value: budget for reason, budget in document.pause_budgets.items()},
    )


def _calendar(path: Path, name: str, spec: CalendarSpec) -> BusinessCalendar:
    where = f"{path}: calendars.{name}.holidays"
    days = set(spec.holidays.dates)
    for i, region in enumerate(spec.holidays.public):
        try:
            days |= public_holidays(
                region.country, region.subdivision, range(region.first_year, region.last_year + 1)
            )
        except CalendarFileError as e:
            raise SlaPolicyFileError(f"{where}.public.{i}: {e}") from e
    for i, ical in enumerate(spec.holidays.ical_files):
        try:
            days |= ical_holidays(path.parent / ical)
        except CalendarFileError as e:
            raise SlaPolicyFileError(f"{where}.ical_files.{i}: {e}") from e
    return spec.calendar(name, frozenset(days))


def _rule(path: Path, where: str, spec: ClockRuleSpec, calendars: dict[str, BusinessCalendar]) -> ClockRule:
    w = spec.when
    return ClockRule(
        clock=spec.clock,
        calendar=_named(path, f"{where}.calendar", spec.calendar, calendars),
        severities=frozenset(w.severity),
        channels=frozenset(w.channel),
        kinds=frozenset(w.kind),
        categories=frozenset(w.category),
        tiers=frozenset(w.tier),
        duration=spec.duration,
        warning_fraction=spec.warning_fraction,
        pausable=spec.pausable,
    )


def _named(path: Path, where: str, name: str, calendars: dict[str, BusinessCalendar]) -> BusinessCalendar:
    if name not in calendars:
        raise SlaPolicyFileError(
            f"{path}: {where}: no calendar named {name!r} (known: {', '.join(sorted(calendars))})"
        )
    return calendars[name]
