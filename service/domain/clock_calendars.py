"""Which calendar each SLA clock counts in, and which named clocks a case has: rules from the SLA policy file.

A built-in clock (first response, resolution) that no rule names counts in the default calendar (24x7
unless the file says otherwise); a named clock runs only on the cases one of its rules selects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from service.domain.calendars import BusinessCalendar, always_open
from service.domain.severity import Severity
from service.domain.signals import Category, Channel, SignalKind, Tier


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockCase:
    """What a rule can select on: the case's severity, channel, kind, category and customer tier."""

    severity: Severity
    channel: Channel | None = None
    kind: SignalKind | None = None
    category: Category | None = None
    tier: Tier = Tier.STANDARD


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockRule:
    """A clock counts in `calendar` for cases matching every non-empty set (an empty set matches any).

    A named clock's rule also gives its duration; any rule may set the warning fraction and whether
    pauses stop the clock.
    """

    clock: str
    calendar: BusinessCalendar
    duration: timedelta | None = None
    warning_fraction: float | None = None  # None: the policy's RECOVERY_SLA_WARNING_FRACTION
    pausable: bool = True
    severities: frozenset[Severity] = frozenset()
    channels: frozenset[Channel] = frozenset()
    kinds: frozenset[SignalKind] = frozenset()
    categories: frozenset[Category] = frozenset()
    tiers: frozenset[Tier] = frozenset()

    def matches(self, clock: str, case: ClockCase) -> bool:
        """The rule names this clock and each of its sets admits the case."""
        return clock == self.clock and all(
            not allowed or value in allowed
            for allowed, value in (
                (self.severities, case.severity),
                (self.channels, case.channel),
                (self.kinds, case.kind),
                (self.categories, case.category),
                (self.tiers, case.tier),
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockCalendars:
    """A versioned set of named calendars and the rules that give each clock its calendar."""

    version: str
    calendars: tuple[BusinessCalendar, ...] = ()
    rules: tuple[ClockRule, ...] = ()
    default: BusinessCalendar = field(default_factory=always_open)
    # paused time each pause reason may take per case; a reason not named has the default budget
    pause_budgets: Mapping[str, timedelta] = field(default_factory=dict)
    named_clocks: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        named = (r.clock for r in self.rules if r.clock not in ("first_response", "resolution"))
        object.__setattr__(self, "named_clocks", tuple(dict.fromkeys(named)))

    def rule_for(self, clock: str, case: ClockCase) -> ClockRule | None:
        """The first rule for this clock that admits the case, or None."""
        return next((rule for rule in self.rules if rule.matches(clock, case)), None)

    def calendar_for(self, clock: str, case: ClockCase) -> BusinessCalendar:
        """The first matching rule decides; with none, the clock counts in the default calendar (24x7)."""
        rule = self.rule_for(clock, case)
        return self.default if rule is None else rule.calendar

    def named(self, name: str) -> BusinessCalendar | None:
        """The calendar of that name, or None."""
        return next((c for c in self.calendars if c.name == name), None)
