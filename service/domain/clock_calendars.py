"""Which calendar each SLA clock counts in: rules from the SLA policy file, as data.

Not wired yet: today every clock counts in the 24x7 calendar, which is also what a case matches when no
rule names its clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """A clock counts in `calendar` for cases matching every non-empty set (an empty set matches any)."""

    clock: str
    calendar: BusinessCalendar
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

    def calendar_for(self, clock: str, case: ClockCase) -> BusinessCalendar:
        """The first matching rule decides; with none, the clock counts in the default calendar (24x7)."""
        return next((rule.calendar for rule in self.rules if rule.matches(clock, case)), self.default)

    def named(self, name: str) -> BusinessCalendar | None:
        """The calendar of that name, or None."""
        return next((c for c in self.calendars if c.name == name), None)
