"""What every CommandStore does, fake or PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.app.commands import Remembered
from service.domain.case import Compensation, evolve
from service.domain.commands import AddNote, Facts, OpenByHand, RequestCompensation, decide
from service.domain.compensation import ONE_DAY
from service.domain.errors import ConcurrencyConflict
from service.domain.events import CompensationKind
from service.domain.intake import NewEvent
from service.domain.severity import Severity
from service.domain.signals import Tier
from tests.store_behaviour.stores import ANA, MIA, RULES, Behaviour, Stores, after, opened


async def a_recorded_case_reads_back_and_is_its_customers_latest(stores: Stores) -> None:
    store = stores.commands
    case = await opened(store, "cust-1")
    async with store.transaction() as tx:
        assert await tx.case(case.case_id) == case
        assert await tx.latest_case("cust-1") == case
        assert await tx.case("no-such-case") is None and await tx.latest_case("nobody") is None


async def an_append_on_a_taken_version_conflicts_and_nothing_of_its_transaction_stays(stores: Stores) -> None:
    store = stores.commands
    case = await opened(store, "cust-1")
    noted = await after(store, case, ANA, AddNote("first"))
    with pytest.raises(ConcurrencyConflict):
        async with store.transaction() as tx:
            now = await tx.now()
            await tx.remember("ana", case.case_id, "k-1", "add_note", Remembered(case.case_id, 2, False, now))
            [event] = decide(AddNote("second, on the old version"), case, Facts(ANA, now), RULES)
            await tx.record([NewEvent(case.case_id, 2, event)], evolve(case, event), {})
    async with store.transaction() as tx:
        assert await tx.case(case.case_id) == noted
        assert await tx.prior_answer("ana", case.case_id, "k-1") is None


async def an_idempotency_key_is_remembered_once_per_actor_and_target(stores: Stores) -> None:
    store = stores.commands
    case = await opened(store, "cust-1")
    async with store.transaction() as tx:
        remembered = Remembered(case.case_id, 1, True, await tx.now())
        await tx.remember("mia", "customer/cust-1", "k-1", "open", remembered)
    async with store.transaction() as tx:
        assert await tx.prior_answer("mia", "customer/cust-1", "k-1") == ("open", remembered)
        assert await tx.prior_answer("ana", "customer/cust-1", "k-1") is None
        assert await tx.prior_answer("mia", case.case_id, "k-1") is None
    with pytest.raises(ConcurrencyConflict):
        async with store.transaction() as tx:
            await tx.remember("mia", "customer/cust-1", "k-1", "open", remembered)


async def the_case_at_a_version_is_the_case_as_it_was(stores: Stores) -> None:
    store = stores.commands
    case = await opened(store, "cust-1")
    noted = await after(store, case, ANA, AddNote("a note"))
    async with store.transaction() as tx:
        assert await tx.case_at(case.case_id, 1) == case
        assert await tx.case_at(case.case_id, 2) == noted == await tx.case_at(case.case_id, None)


async def the_history_counts_the_customers_other_cases_and_the_actors_requests(stores: Stores) -> None:
    store = stores.commands
    first = await opened(store, "cust-1")
    other = await opened(store, "cust-2")
    refund = RequestCompensation(CompensationKind.CREDIT, Decimal(5), "EUR", "late")
    first = await after(store, first, ANA, refund)
    async with store.transaction() as tx:
        since = await tx.now() - ONE_DAY
        by_ana = await tx.compensation_history(other, "ana", since)
        by_mia = await tx.compensation_history(other, "mia", since)
        on_itself = await tx.compensation_history(first, "ana", since)
    # what the limits count: each compensation's request, money and status (its reason may be held sealed)
    assert counted(by_ana.actor) == counted(first.compensations) and by_ana.customer == ()
    assert by_mia.actor == () and on_itself == type(on_itself)()  # its own case is not "other"


def counted(compensations: tuple[Compensation, ...]) -> list[tuple[str, Decimal, str, str, str]]:
    return [(c.request_id, c.amount, c.currency, c.status, c.requested_by) for c in compensations]


async def a_transaction_that_fails_keeps_nothing(stores: Stores) -> None:
    store = stores.commands
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            command = OpenByHand("cust-9", Severity.MINOR, None, Tier.STANDARD, "escalated")
            [event] = decide(command, None, Facts(MIA, await tx.now()), RULES)
            state = evolve(None, event)
            await tx.record([NewEvent(state.case_id, 1, event)], state, {})
            raise RuntimeError("the use case failed after the append")
    async with store.transaction() as tx:
        assert await tx.latest_case("cust-9") is None


BEHAVIOURS: list[Behaviour] = [
    a_recorded_case_reads_back_and_is_its_customers_latest,
    an_append_on_a_taken_version_conflicts_and_nothing_of_its_transaction_stays,
    an_idempotency_key_is_remembered_once_per_actor_and_target,
    the_case_at_a_version_is_the_case_as_it_was,
    the_history_counts_the_customers_other_cases_and_the_actors_requests,
    a_transaction_that_fails_keeps_nothing,
]
