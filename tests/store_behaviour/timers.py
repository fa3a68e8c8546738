"""What every TimerStore does, fake or PostgreSQL: due timers claimed in order and fired once, a moved
deadline armed again, and the timers of a case whose snapshot does not read set aside until it reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.case import CaseState
from service.domain.commands import AddNote, Facts, decide
from service.domain.errors import ConcurrencyConflict
from service.domain.intake import NewEvent
from service.domain.timers import Timer, TimerKind
from tests.store_behaviour.stores import ANA, RULES, Behaviour, Stores, after, now_of, opened


async def armed(stores: Stores, case: CaseState, *timers: Timer) -> None:
    """The case's timers replaced by these, as a command's or the intake's transaction writes them."""
    async with stores.commands.transaction() as tx:
        await tx.record([], case, {case.case_id: list(timers)})


async def claimed(stores: Stores, limit: int = 10) -> list[Timer]:
    """What a claim would take now (its transaction ends without marking anything)."""
    async with stores.timers.transaction() as tx:
        due, _ = await tx.claim_due(limit)
    return due


async def due_timers_are_claimed_in_due_order_up_to_the_limit_and_once_fired_never_again(
    stores: Stores,
) -> None:
    case, now = await opened(stores.commands, "cust-1"), await now_of(stores)
    warning = Timer(case.case_id, "first_response", TimerKind.WARNING, now, now - timedelta(hours=2))
    breach = Timer(case.case_id, "first_response", TimerKind.BREACH, now, now - timedelta(hours=1))
    ahead = Timer(
        case.case_id, "resolution", TimerKind.BREACH, now + timedelta(days=1), now + timedelta(days=1)
    )
    await armed(stores, case, ahead, breach, warning)
    assert await claimed(stores, limit=1) == [warning]
    async with stores.timers.transaction() as tx:
        due, _ = await tx.claim_due(10)
        assert due == [warning, breach]
        await tx.record(due, [], {}, {})
    assert await claimed(stores) == []


async def a_claim_whose_transaction_fails_is_claimed_again(stores: Stores) -> None:
    case, now = await opened(stores.commands, "cust-1"), await now_of(stores)
    breach = Timer(case.case_id, "first_response", TimerKind.BREACH, now, now - timedelta(minutes=1))
    await armed(stores, case, breach)
    with pytest.raises(RuntimeError):
        async with stores.timers.transaction() as tx:
            due, _ = await tx.claim_due(10)
            await tx.record(due, [], {}, {})
            raise RuntimeError("the instance died before its commit")
    assert await claimed(stores) == [breach]


async def a_fired_timer_is_armed_again_only_when_its_deadline_moves_and_a_dropped_one_is_gone(
    stores: Stores,
) -> None:
    case, now = await opened(stores.commands, "cust-1"), await now_of(stores)
    warning = Timer(case.case_id, "first_response", TimerKind.WARNING, now, now - timedelta(hours=2))
    breach = Timer(case.case_id, "first_response", TimerKind.BREACH, now, now - timedelta(hours=1))
    await armed(stores, case, warning, breach)
    async with stores.timers.transaction() as tx:
        due, _ = await tx.claim_due(10)
        await tx.record(due, [], {}, {})
    moved = Timer(case.case_id, "first_response", TimerKind.BREACH, now - timedelta(minutes=1), now)
    await armed(stores, case, warning, moved)  # an escalation tightened the deadline
    assert await claimed(stores) == [moved]
    await armed(stores, case)  # the clock stopped
    assert await claimed(stores) == []


async def a_damaged_snapshot_fails_every_read_of_it_but_the_timer_stores_which_leaves_it_out(
    stores: Stores,
) -> None:
    good, bad = await opened(stores.commands, "cust-1"), await opened(stores.commands, "cust-2")
    await stores.damage(bad.case_id)
    async with stores.timers.transaction() as tx:
        read = await tx.cases([good.case_id, bad.case_id, "no-such-case"])
    assert {c: s.version for c, s in read.items()} == {good.case_id: good.version}
    with pytest.raises(ValueError):
        async with stores.commands.transaction() as tx:
            await tx.case(bad.case_id)
    with pytest.raises(ValueError):
        async with stores.intake.transaction() as tx:
            await tx.latest_cases(["cust-2"])
    await stores.repair(bad.case_id)
    async with stores.commands.transaction() as tx:
        assert await tx.case(bad.case_id) == bad


async def a_set_aside_timer_is_not_claimed_and_comes_back_once_its_snapshot_reads(stores: Stores) -> None:
    case, now = await opened(stores.commands, "cust-1"), await now_of(stores)
    breach = Timer(case.case_id, "first_response", TimerKind.BREACH, now, now - timedelta(minutes=1))
    await armed(stores, case, breach)
    await stores.damage(case.case_id)
    async with stores.timers.transaction() as tx:
        due, _ = await tx.claim_due(10)
        assert due == [breach] and await tx.cases([case.case_id]) == {}
        await tx.record([], [], {}, {}, set_aside=due)
    assert await claimed(stores) == []
    async with stores.timers.transaction() as tx:
        assert await tx.rearm_readable(timedelta(hours=1)) == []  # set aside too recently to look again
        assert await tx.rearm_readable(timedelta(0)) == []  # still unreadable: still set aside
    assert await claimed(stores) == []
    await stores.repair(case.case_id)
    async with stores.timers.transaction() as tx:
        assert await tx.rearm_readable(timedelta(0)) == [case.case_id]
    assert await claimed(stores) == [breach]
    async with stores.timers.transaction() as tx:
        assert await tx.rearm_readable(timedelta(0)) == []  # nothing is set aside any more


async def a_firing_that_loses_its_append_keeps_no_fired_mark(stores: Stores) -> None:
    case, now = await opened(stores.commands, "cust-1"), await now_of(stores)
    breach = Timer(case.case_id, "first_response", TimerKind.BREACH, now, now - timedelta(minutes=1))
    await armed(stores, case, breach)
    await after(stores.commands, case, ANA, AddNote("another writer's, at version 2"))
    [late] = decide(AddNote("decided on version 1"), case, Facts(ANA, now), RULES)
    with pytest.raises(ConcurrencyConflict):
        async with stores.timers.transaction() as tx:
            due, _ = await tx.claim_due(10)
            await tx.record(due, [NewEvent(case.case_id, 2, late)], {}, {})
    assert await claimed(stores) == [breach]


BEHAVIOURS: list[Behaviour] = [
    due_timers_are_claimed_in_due_order_up_to_the_limit_and_once_fired_never_again,
    a_claim_whose_transaction_fails_is_claimed_again,
    a_fired_timer_is_armed_again_only_when_its_deadline_moves_and_a_dropped_one_is_gone,
    a_damaged_snapshot_fails_every_read_of_it_but_the_timer_stores_which_leaves_it_out,
    a_set_aside_timer_is_not_claimed_and_comes_back_once_its_snapshot_reads,
    a_firing_that_loses_its_append_keeps_no_fired_mark,
]
