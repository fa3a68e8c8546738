"""Root-cause trends: enough recently resolved cases sharing a tag is a pattern worth telling someone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class TrendPolicy:
    threshold: int = 6
    window: timedelta = timedelta(days=90)


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
    above = len(resolved_in_window) >= policy.threshold
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
