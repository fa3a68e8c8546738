"""What every IntakeStore does, fake or PostgreSQL: dedup by (source, id), offsets kept with their batch, a
customer's latest case and failures, and a batch decided on an out-of-date view refused whole."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from service.app.ports import IntakeTransaction
from service.domain.errors import ConcurrencyConflict
from service.domain.intake import IntakePlan, plan_intake
from service.domain.severity import load_default_policy
from service.domain.signals import Channel, Signal, SignalKind
from service.domain.sla import SlaPolicy
from tests.cases import CASE_IDS
from tests.store_behaviour.stores import Behaviour, Stores, now_of

POLICY = load_default_policy()
SLA = SlaPolicy(first_response={Channel.CHAT: timedelta(minutes=1)})
WINDOW = timedelta(days=30)


def nps(signal_id: str, customer: str, at: datetime, score: int = 2, text: str | None = None) -> Signal:
    """A score of 2 is a failure, 9 is not."""
    return Signal(
        source="survey",
        id=signal_id,
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id=customer,
        channel=Channel.CHAT,
        score=score,
        text=text,
    )


async def planned(tx: IntakeTransaction, signals: Sequence[Signal], now: datetime) -> IntakePlan:
    """The batch planned on what the transaction reads, as the intake use case plans it."""
    customers = sorted({s.customer_id for s in signals})
    latest = await tx.latest_cases(customers)
    recent = await tx.recent_failures(customers, now - WINDOW)
    return plan_intake(signals, [None] * len(signals), latest, recent, POLICY, SLA, WINDOW, now, CASE_IDS)


async def recorded(
    stores: Stores, *signals: Signal, offsets: dict[tuple[str, int], int] | None = None
) -> IntakePlan:
    now = await now_of(stores)
    async with stores.intake.transaction() as tx:
        plan = await planned(tx, signals, now)
        await tx.record(plan, "g", offsets or {})
    return plan


async def a_recorded_batch_is_seen_and_its_case_is_the_customers_latest_in_every_store(
    stores: Stores,
) -> None:
    now = await now_of(stores)
    plan = await recorded(stores, nps("a", "cust-1", now), nps("b", "cust-2", now, score=9))
    [case] = plan.cases.values()
    async with stores.intake.transaction() as tx:
        keys = [("survey", "a"), ("survey", "b"), ("survey", "c")]
        assert await tx.seen(keys) == {("survey", "a"), ("survey", "b")}  # a non-failure is logged too
        latest = await tx.latest_cases(["cust-1", "cust-2"])
        assert {c: (s.case_id, s.version) for c, s in latest.items()} == {
            "cust-1": (case.case_id, case.version)
        }
    async with stores.commands.transaction() as tx:
        assert await tx.latest_case("cust-1") == case


async def recent_failures_are_the_customers_failures_since_then(stores: Stores) -> None:
    now = await now_of(stores)
    old, new = now - timedelta(days=10), now - timedelta(days=1)
    await recorded(
        stores,
        nps("old", "cust-1", old),
        nps("new", "cust-1", new),
        nps("fine", "cust-1", now, score=9),
        nps("theirs", "cust-2", new),
    )
    async with stores.intake.transaction() as tx:
        assert await tx.recent_failures(["cust-1", "cust-3"], now - timedelta(days=5)) == {"cust-1": [new]}
        longer = await tx.recent_failures(["cust-1"], old)
        assert sorted(longer["cust-1"]) == [old, new]


async def a_cases_signals_are_its_failures_in_the_log_in_their_order_with_their_words(stores: Stores) -> None:
    now = await now_of(stores)
    plan = await recorded(
        stores,
        nps("first", "cust-1", now - timedelta(minutes=1), text="late again"),
        nps("second", "cust-1", now),
        nps("fine", "cust-1", now, score=9),  # on the case's customer, but no failure: not the case's
    )
    [case] = plan.cases.values()
    async with stores.commands.transaction() as tx:
        signals = await tx.signals(case.case_id)
    assert [(s.id, s.type, s.text) for s in signals] == [
        ("first", "recovery.signal.nps", "late again"),
        ("second", "recovery.signal.nps", None),
    ]
    classified = {a.signal.id: a.classification for a in plan.applied}
    assert [(s.severity, s.reasons, s.category, s.policy_version) for s in signals] == [
        (c.severity, list(c.reasons), c.category, c.policy_version)
        for c in (classified["first"], classified["second"])
    ]
    assert [(s.occurred_at, s.received_at) for s in signals] == [
        (now - timedelta(minutes=1),) * 2,
        (now, now),
    ]


async def offsets_move_with_their_batch_never_backwards_and_per_group(stores: Stores) -> None:
    async with stores.intake.transaction() as tx:
        await tx.record(IntakePlan(), "g", {("t", 0): 10, ("t", 1): 4})
    async with stores.intake.transaction() as tx:
        await tx.record(IntakePlan(), "g", {("t", 0): 7})  # a late, stale writer
        await tx.record(IntakePlan(), "other", {("t", 0): 3})
    assert await stores.intake.next_offsets("g", [("t", 0), ("t", 1), ("t", 2)]) == {
        ("t", 0): 10,
        ("t", 1): 4,
    }
    assert await stores.intake.next_offsets("other", [("t", 0), ("u", 0)]) == {("t", 0): 3}


async def a_batch_that_opens_a_case_another_batch_opened_meanwhile_conflicts_and_keeps_nothing(
    stores: Stores,
) -> None:
    now = await now_of(stores)
    async with stores.intake.transaction() as tx:
        late = await planned(tx, [nps("b", "cust-1", now)], now)  # decided on no case, not yet recorded
    first = await recorded(stores, nps("a", "cust-1", now), offsets={("t", 0): 1})
    with pytest.raises(ConcurrencyConflict):
        async with stores.intake.transaction() as tx:
            await tx.record(late, "g", {("t", 0): 2, ("t", 1): 5})
    [case] = first.cases.values()
    async with stores.intake.transaction() as tx:
        assert await tx.seen([("survey", "b")]) == set()
        assert (await tx.latest_cases(["cust-1"]))["cust-1"].case_id == case.case_id
    assert await stores.intake.next_offsets("g", [("t", 0), ("t", 1)]) == {("t", 0): 1}
    async with stores.commands.transaction() as tx:
        assert await tx.case(next(iter(late.cases))) is None


async def a_batch_decided_on_an_older_version_of_a_case_conflicts(stores: Stores) -> None:
    now = await now_of(stores)
    [case] = (await recorded(stores, nps("a", "cust-1", now))).cases.values()
    async with stores.intake.transaction() as tx:
        late = await planned(tx, [nps("b", "cust-1", now)], now)
    [attached] = (await recorded(stores, nps("c", "cust-1", now))).cases.values()
    assert attached.case_id == case.case_id and attached.version > case.version
    with pytest.raises(ConcurrencyConflict):
        async with stores.intake.transaction() as tx:
            await tx.record(late, "g", {})
    async with stores.commands.transaction() as tx:
        assert await tx.case(case.case_id) == attached


async def a_signal_logged_twice_conflicts_even_when_it_changes_no_case(stores: Stores) -> None:
    now = await now_of(stores)
    async with stores.intake.transaction() as tx:
        late = await planned(tx, [nps("fine", "cust-1", now, score=9)], now)
    await recorded(stores, nps("fine", "cust-1", now, score=9))
    assert late.cases == {} and late.events == []
    with pytest.raises(ConcurrencyConflict):
        async with stores.intake.transaction() as tx:
            await tx.record(late, "g", {})


async def the_timers_a_batch_arms_are_the_timer_stores_to_claim(stores: Stores) -> None:
    now = await now_of(stores)
    plan = await recorded(stores, nps("a", "cust-1", now - timedelta(hours=2)))  # first response due in 1 min
    armed = {(t.case_id, t.sla, t.kind, t.deadline, t.due_at) for ts in plan.timers.values() for t in ts}
    due = {t for t in armed if t[4] <= now}
    assert due and due != armed  # the first response's warning and breach; the resolution's are ahead
    async with stores.timers.transaction() as tx:
        claimed, _ = await tx.claim_due(10)
    assert {(t.case_id, t.sla, t.kind, t.deadline, t.due_at) for t in claimed} == due


async def a_reopen_asks_for_a_review_of_its_tag_only_while_the_tag_is_a_trend(stores: Stores) -> None:
    now = await now_of(stores)
    async with stores.trends.transaction() as tx:
        await tx.record_trend("hot", None, True, None)
        await tx.record_trend("cold", None, False, None)
        await tx.record_trend("armed", None, True, now + timedelta(days=9))
    async with stores.intake.transaction() as tx:
        await tx.record(IntakePlan(root_causes={"hot", "cold", "armed", "unknown"}), "g", {})
    async with stores.trends.transaction() as tx:
        assert await tx.claim_due(10) == ["armed", "hot"]  # due at the same instant: by tag


BEHAVIOURS: list[Behaviour] = [
    a_recorded_batch_is_seen_and_its_case_is_the_customers_latest_in_every_store,
    recent_failures_are_the_customers_failures_since_then,
    a_cases_signals_are_its_failures_in_the_log_in_their_order_with_their_words,
    offsets_move_with_their_batch_never_backwards_and_per_group,
    a_batch_that_opens_a_case_another_batch_opened_meanwhile_conflicts_and_keeps_nothing,
    a_batch_decided_on_an_older_version_of_a_case_conflicts,
    a_signal_logged_twice_conflicts_even_when_it_changes_no_case,
    the_timers_a_batch_arms_are_the_timer_stores_to_claim,
    a_reopen_asks_for_a_review_of_its_tag_only_while_the_tag_is_a_trend,
]
