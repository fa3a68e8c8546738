"""The intake use case on the in-memory stores (held to PostgreSQL's behaviour by tests/store_behaviour): a
case opened with its offsets, redelivery, a batch of several customers, and a lost race decided again."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from service.app.commands import Submission, run_command
from service.app.intake import IntakeResult, IntakeRules, apply_signals
from service.app.ports import PartitionKey
from service.domain.commands import AddNote, CommandRules
from service.domain.intake import Outcome
from service.domain.severity import load_default_policy
from service.domain.signals import Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeCommandStore, FakeDatabase, FakeIntakeStore, FakeIntakeTransaction, Held

RULES = IntakeRules(load_default_policy(), SlaPolicy(), timedelta(days=30), CASE_IDS)


class NoWords:
    def compound(self, text: str | None) -> float | None:
        return None


def nps(signal_id: str, customer: str, at: datetime, score: int = 2) -> Signal:
    return Signal(
        source="survey",
        id=signal_id,
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id=customer,
        score=score,
    )


async def apply(
    store: FakeIntakeStore, *signals: Signal, offsets: dict[PartitionKey, int] | None = None
) -> IntakeResult:
    return await apply_signals(
        list(signals), offsets or {}, "g", store, RULES, NoWords(), store.database.clock
    )


async def test_a_failure_opens_a_case_the_staff_can_work_and_its_offsets_move_with_it() -> None:
    database = FakeDatabase()
    intake = FakeIntakeStore(database)
    result = await apply(intake, nps("a", "cust-1", database.clock.now()), offsets={("t", 0): 5})
    [applied] = result.applied
    assert applied.outcome is Outcome.OPENED and applied.case_id is not None and result.events > 0
    assert await intake.next_offsets("g", [("t", 0), ("t", 1)]) == {("t", 0): 5}
    noted = await run_command(
        Submission(AddNote("called back"), Actor("ana", "agent"), applied.case_id),
        FakeCommandStore(database),
        CommandRules(RULES.sla),
    )
    assert noted.state.customer_id == "cust-1" and noted.state.version == result.events + 1


async def test_a_redelivered_batch_changes_nothing_and_counts_its_duplicates() -> None:
    database = FakeDatabase()
    intake, now = FakeIntakeStore(database), database.clock.now()
    batch = [nps("a", "cust-1", now), nps("b", "cust-1", now), nps("a", "cust-1", now)]
    first = await apply(intake, *batch)
    events = {stream: list(e) for stream, e in database.held.events.items()}
    again = await apply(intake, *batch)
    assert len(first.applied) == 2 and len(first.duplicates) == 1
    assert again.applied == [] and len(again.duplicates) == 3 and again.events == 0
    assert database.held.events == events


async def test_a_batch_of_several_customers_applies_each_customers_signals_in_failure_order() -> None:
    database = FakeDatabase()
    intake, now = FakeIntakeStore(database), database.clock.now()
    result = await apply(
        intake,
        nps("later", "cust-1", now),
        nps("other", "cust-2", now - timedelta(minutes=5)),
        nps("fine", "cust-3", now, score=9),
        nps("earlier", "cust-1", now - timedelta(minutes=10)),
    )
    outcomes = {a.signal.id: a.outcome for a in result.applied}
    assert outcomes == {
        "earlier": Outcome.OPENED,
        "other": Outcome.OPENED,
        "later": Outcome.ATTACHED,
        "fine": Outcome.NOT_A_FAILURE,
    }
    cases = {c.customer_id: c for c in database.held.cases.values()}
    assert sorted(cases) == ["cust-1", "cust-2"] and cases["cust-1"].signal_count == 2
    assert cases["cust-1"].opened_at == now - timedelta(minutes=10)  # opened by the earlier failure


class DecidedBeforeAnotherBatch(FakeIntakeStore):
    """Its first transaction reads the store as it was when this was made (as if another instance's batch
    committed while it decided) and writes on what is held now: the race PostgreSQL's intake loses."""

    def __init__(self, database: FakeDatabase) -> None:
        super().__init__(database)
        self.before: Held | None = copy.deepcopy(database.held)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeIntakeTransaction]:
        async with super().transaction() as tx:
            if self.before is not None:
                stale, self.before = FakeIntakeTransaction(self.before, self.database.clock), None
                tx.seen = stale.seen  # type: ignore[method-assign]
                tx.latest_cases = stale.latest_cases  # type: ignore[method-assign]
                tx.recent_failures = stale.recent_failures  # type: ignore[method-assign]
            yield tx


async def test_a_lost_race_is_decided_again_and_attaches_instead_of_opening_a_second_case() -> None:
    database = FakeDatabase()
    now = database.clock.now()
    slow = DecidedBeforeAnotherBatch(database)  # it will see no case for the customer
    fast = await apply(FakeIntakeStore(database), nps("nps-1", "c-race", now))
    lost = await apply(slow, nps("complaint-1", "c-race", now), offsets={("t", 0): 9})
    assert [a.outcome for a in fast.applied] == [Outcome.OPENED]
    assert lost.conflicts == 1 and [a.outcome for a in lost.applied] == [Outcome.ATTACHED]
    assert [c.customer_id for c in database.held.cases.values()] == ["c-race"]
    assert await slow.next_offsets("g", [("t", 0)]) == {("t", 0): 9}
