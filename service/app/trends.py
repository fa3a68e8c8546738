"""Use case: look at a root-cause tag again, after a resolution, a reopen, or when its cases leave the window."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from service.domain.intake import NewEvent
from service.domain.trends import TrendDetected, TrendPolicy, review_trend, trend_stream


class TrendTransaction(Protocol):
    async def now(self) -> datetime: ...

    async def resolved_with(self, root_cause: str, since: datetime) -> Mapping[str, datetime]: ...

    async def trend(self, tag: str) -> tuple[bool, int]: ...

    async def record_trend(
        self, tag: str, event: NewEvent | None, active: bool, due_at: datetime | None
    ) -> None: ...


class DueTrendTransaction(TrendTransaction, Protocol):
    async def claim_due(self, limit: int) -> list[str]: ...


class TrendStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[DueTrendTransaction]: ...


@dataclass(frozen=True)
class Reviewed:
    tag: str
    was_trend: bool
    is_trend: bool
    event: TrendDetected | None  # a crossing, appended to the tag's stream: the relay publishes it


async def watch_trend(tx: TrendTransaction, tag: str, policy: TrendPolicy) -> Reviewed:
    """Count the tag's cases in the window now; publish a crossing once, and arm its next review."""
    now = await tx.now()
    active, crossings = await tx.trend(tag)
    review = review_trend(tag, await tx.resolved_with(tag, now - policy.window), active, policy, now)
    new = NewEvent(trend_stream(tag), crossings + 1, review.event) if review.event else None
    await tx.record_trend(tag, new, review.above, review.due_at)
    return Reviewed(tag, active, review.above, review.event)


async def review_due_trends(store: TrendStore, policy: TrendPolicy, limit: int) -> list[Reviewed]:
    """Review the tags whose timer is due (a case left the window, or a reopen asked for it), in one
    transaction: an interrupted claim is claimed again, and two instances never review one tag at once."""
    async with store.transaction() as tx:
        return [await watch_trend(tx, tag, policy) for tag in await tx.claim_due(limit)]
