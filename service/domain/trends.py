"""Root-cause trends: enough recently resolved cases sharing a tag is a pattern worth telling someone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class TrendPolicy:
    threshold: int = 6
    window: timedelta = timedelta(days=90)

    def is_trend(self, count: int) -> bool:
        """A tag is a trend while at least `threshold` cases resolved with it lie within the window."""
        return count >= self.threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendDetected:
    type: Literal["rootcause.trend_detected"] = "rootcause.trend_detected"
    at: datetime
    tag: str
    count: int
    window_days: int
    case_ids: tuple[str, ...]


def trend_stream(tag: str) -> str:
    return f"rootcause-trend/{tag}"


def decide_trend(
    tag: str, resolved_in_window: Sequence[str], active: bool, policy: TrendPolicy, now: datetime
) -> tuple[TrendDetected | None, bool]:
    """A tag crossing the threshold is a trend, once; it can cross again only after falling below it."""
    above = policy.is_trend(len(resolved_in_window))
    if not above or active:
        return None, above
    event = TrendDetected(
        at=now,
        tag=tag,
        count=len(resolved_in_window),
        window_days=policy.window.days,
        case_ids=tuple(sorted(resolved_in_window)),
    )
    return event, True


@dataclass(frozen=True, slots=True)
class TrendReview:
    event: TrendDetected | None  # a crossing: published once
    above: bool  # the tag is a trend now (stored as the state the next review starts from)
    due_at: datetime | None  # when to look again without being asked; None while below the threshold


def review_trend(
    tag: str, resolved: Mapping[str, datetime], active: bool, policy: TrendPolicy, now: datetime
) -> TrendReview:
    """A tag's cases resolved before the window no longer count; a tag above the threshold is looked at again
    when enough of its oldest cases will have left the window for it to fall below."""
    in_window = {case_id: at for case_id, at in resolved.items() if at >= now - policy.window}
    event, above = decide_trend(tag, list(in_window), active, policy, now)
    return TrendReview(event, above, falls_below_at(in_window.values(), policy) if above else None)


def falls_below_at(resolved_at: Iterable[datetime], policy: TrendPolicy) -> datetime | None:
    """When the count falls below the threshold if no case is added or reopened: when the case that keeps it
    at the threshold leaves the window. None when it is below already (time alone can only lower it)."""
    times = sorted(resolved_at)
    if not policy.is_trend(len(times)):
        return None
    return times[len(times) - policy.threshold] + policy.window + _TICK


# A case resolved at t counts while t >= now - window, so it has left the window one tick (PostgreSQL's
# microsecond) after t + window.
_TICK = timedelta(microseconds=1)
