"""The incident backtest: what the surge rules would have fired over the stored failures of a span, so a team
calibrates a rule before it turns it on (`recovery incidents backtest`).

The failures are replayed (`incidents.Replay`) from a lead-in before the span, the longest baseline period and
window of any rule, so that a window ending at the span's start is counted, and its baseline taken, from all
that live detection had stored by then. The lead-in only fills windows and baselines; what fires is reported
when its window ends in the span, start and end included. A scope fires once, as live, where its incident
stays open until someone closes it; incidents already open when the span starts are not known to the replay,
so a scope whose incident was still open then may fire in the backtest where live detection did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain.errors import InvalidValue
from service.domain.incidents import Detection, IncidentOpened, IncidentPolicy, Replay, Sighting, SurgeRule

MAX_SPAN = timedelta(days=90)
"""The longest span a backtest replays (the failures of a lead-in and 90 days pass through memory once)."""


@dataclass(frozen=True, slots=True)
class BacktestSpan:
    """The times a window may end at to be reported, from `start` to `end`, both included."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for field, at in (("start", self.start), ("end", self.end)):
            if at.utcoffset() is None:
                raise InvalidValue("needs a UTC offset (e.g. Z or +01:00)", field=field)
        if self.end <= self.start:
            raise InvalidValue("must be after the start", field="end")
        if self.end - self.start > MAX_SPAN:
            raise InvalidValue(f"must be at most {MAX_SPAN.days} days after the start", field="end")

    def reads_after(self, policy: IncidentPolicy) -> datetime:
        """Failures after this time feed the replay: the span's start less the policy's lead-in."""
        return self.start - lead_in(policy)


def lead_in(policy: IncidentPolicy) -> timedelta:
    """How far before the span the failures are read: the baseline of a window ending at the span's start
    reaches back its rule's baseline period and window at most."""
    return max((r.baseline_period + r.window for r in policy.surges), default=timedelta(0))


@dataclass(frozen=True, slots=True)
class RuleBacktest:
    """One rule's incidents in the span, in the order they would have fired."""

    rule: SurgeRule
    fired: tuple[IncidentOpened, ...]


@dataclass(frozen=True, slots=True)
class Backtest:
    span: BacktestSpan
    failures: int  # the failures replayed, those of the lead-in included
    rules: tuple[RuleBacktest, ...]  # every rule of the policy, in its order


class Backtesting:
    """A backtest under way: the failures fed in time order, page by page, from `span.reads_after` on."""

    def __init__(self, policy: IncidentPolicy, span: BacktestSpan) -> None:
        self._policy = policy
        self._span = span
        self._replay = Replay(policy, since=span.start)
        self._failures = 0
        self._fired: list[IncidentOpened] = []

    def feed(self, sightings: Iterable[Sighting]) -> None:
        for s in sightings:
            self._failures += 1
            self._fired.extend(e for e in self._replay.see(s) if why(e).window_end <= self._span.end)

    def result(self) -> Backtest:
        rules = tuple(
            RuleBacktest(rule, tuple(e for e in self._fired if why(e).rule == rule.name))
            for rule in self._policy.surges
        )
        return Backtest(self._span, self._failures, rules)


def why(event: IncidentOpened) -> Detection:
    """The detection of an incident a rule fired (a replay fires nothing else)."""
    if event.detection is None:
        raise ValueError(f"incident {event.incident_id} was declared by hand, not fired by a rule")
    return event.detection
