"""The background loop that reviews root-cause trends when their timers fall due (run where the SLA timers run)."""

from __future__ import annotations

import asyncio

import structlog

from service.adapters.retry import keep_running
from service.app.trends import Reviewed, TrendStore, review_due_trends
from service.domain.trends import TrendPolicy

log = structlog.get_logger()


async def review_trends_forever(
    store: TrendStore, policy: TrendPolicy, limit: int = 100, idle_seconds: float = 1.0
) -> None:
    """Poll for due trend timers (an index range scan on armed rows); a full claim polls again at once.

    Trends move in days, so a second's delay is nothing; a database that is away is waited out by the one
    retry policy, and a review that was interrupted is simply claimed again (it recounts from the cases).
    """

    async def turn() -> None:
        while True:
            reviewed = await review_due_trends(store, policy, limit)
            for r in reviewed:
                _observe(r)
            if len(reviewed) < limit:
                await asyncio.sleep(idle_seconds)

    await keep_running("trend reviews", turn)


def _observe(reviewed: Reviewed) -> None:
    if reviewed.event is not None:
        log.info("trend_detected", tag=reviewed.tag, count=reviewed.event.count)
    elif reviewed.was_trend and not reviewed.is_trend:
        log.info("trend_ended", tag=reviewed.tag)
