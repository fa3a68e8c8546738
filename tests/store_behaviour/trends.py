"""What every TrendStore does, fake or PostgreSQL: due tags claimed in order until a review records its next
due time, one crossing per stream version, and a tag's resolved cases as the command store resolved them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.commands import Resolve
from service.domain.errors import ConcurrencyConflict
from service.domain.events import ResolutionType
from service.domain.intake import NewEvent
from service.domain.trends import TrendDetected, trend_stream
from tests.store_behaviour.stores import MIA, TAG, Behaviour, Stores, after, now_of, opened


async def due_tags_are_claimed_in_due_order_up_to_the_limit(stores: Stores) -> None:
    now = await now_of(stores)
    async with stores.trends.transaction() as tx:
        await tx.record_trend("later", None, True, now + timedelta(hours=1))
        await tx.record_trend("second", None, True, now - timedelta(hours=1))
        await tx.record_trend("first", None, True, now - timedelta(hours=2))
        await tx.record_trend("idle", None, False, None)
    async with stores.trends.transaction() as tx:
        assert await tx.claim_due(1) == ["first"]
    async with stores.trends.transaction() as tx:
        assert await tx.claim_due(10) == ["first", "second"]


async def a_review_that_fails_leaves_its_tag_due_and_one_that_records_arms_it_anew(stores: Stores) -> None:
    now = await now_of(stores)
    async with stores.trends.transaction() as tx:
        await tx.record_trend(TAG, None, True, now - timedelta(minutes=1))
    with pytest.raises(RuntimeError):
        async with stores.trends.transaction() as tx:
            assert await tx.claim_due(10) == [TAG]
            await tx.record_trend(TAG, None, False, None)
            raise RuntimeError("the instance died before its commit")
    async with stores.trends.transaction() as tx:
        assert await tx.claim_due(10) == [TAG]
        await tx.record_trend(TAG, None, True, now + timedelta(days=1))
    async with stores.trends.transaction() as tx:
        assert await tx.claim_due(10) == [] and await tx.trend(TAG) == (True, 0)


async def a_crossing_counts_once_and_one_decided_on_the_same_count_conflicts(stores: Stores) -> None:
    now = await now_of(stores)
    crossing = TrendDetected(at=now, tag=TAG, count=3, window_days=90, case_ids=("c-1", "c-2", "c-3"))
    async with stores.trends.transaction() as tx:
        assert await tx.trend(TAG) == (False, 0)
        await tx.record_trend(TAG, NewEvent(trend_stream(TAG), 1, crossing), True, now + timedelta(days=1))
    with pytest.raises(ConcurrencyConflict):
        async with stores.trends.transaction() as tx:  # another review that also read (False, 0)
            await tx.record_trend(TAG, NewEvent(trend_stream(TAG), 1, crossing), True, now)
    async with stores.trends.transaction() as tx:
        assert await tx.trend(TAG) == (True, 1) and await tx.claim_due(10) == []
        await tx.record_trend(
            TAG, None, False, None
        )  # below the threshold again: the count of crossings stays
        assert await tx.trend(TAG) == (False, 1)


async def a_tags_resolved_cases_are_those_resolved_with_it_since_then(stores: Stores) -> None:
    resolve = Resolve(ResolutionType.APOLOGY_ONLY, TAG, "buffers")
    first = await after(stores.commands, await opened(stores.commands, "cust-1"), MIA, resolve)
    second = await after(stores.commands, await opened(stores.commands, "cust-2"), MIA, resolve)
    other = Resolve(ResolutionType.APOLOGY_ONLY, "billing_error", "check invoices")
    await after(stores.commands, await opened(stores.commands, "cust-3"), MIA, other)
    await opened(stores.commands, "cust-4")  # open: resolved with nothing
    assert first.resolution is not None and second.resolution is not None
    expected = {first.case_id: first.resolution.resolved_at, second.case_id: second.resolution.resolved_at}
    since = first.resolution.resolved_at
    async with stores.trends.transaction() as tx:
        assert await tx.resolved_with(TAG, since - timedelta(days=1)) == expected
        assert await tx.resolved_with(TAG, second.resolution.resolved_at + timedelta(seconds=1)) == {}
    async with stores.commands.transaction() as tx:  # a resolving command counts in its own transaction
        assert await tx.resolved_with(TAG, since) == expected


BEHAVIOURS: list[Behaviour] = [
    due_tags_are_claimed_in_due_order_up_to_the_limit,
    a_review_that_fails_leaves_its_tag_due_and_one_that_records_arms_it_anew,
    a_crossing_counts_once_and_one_decided_on_the_same_count_conflicts,
    a_tags_resolved_cases_are_those_resolved_with_it_since_then,
]
