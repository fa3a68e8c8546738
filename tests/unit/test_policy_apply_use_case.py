"""Applying a new SLA policy on the in-memory stores (held to PostgreSQL's behaviour by
tests/store_behaviour): every open case corrected once, a second apply changes nothing, and a case that
cannot be read is reported while the others are corrected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from service.app.commands import Submission, run_command
from service.app.intake import IntakeRules, apply_signals
from service.app.policy import apply_policy
from service.domain.commands import CommandRules, OpenByHand
from service.domain.events import DeadlinesCorrected
from service.domain.severity import Severity, load_default_policy
from service.domain.signals import Signal, SignalKind, Tier
from service.domain.sla import SlaPolicy
from service.domain.timers import TimerKind
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeCommandStore, FakeDatabase, FakeIntakeStore

LONGER = SlaPolicy(resolution={s: timedelta(days=10) for s in Severity})


class NoWords:
    def compound(self, text: str | None) -> float | None:
        return None


async def open_cases(database: FakeDatabase) -> list[str]:
    """Two cases opened by the intake and one by hand, under the default policy; their ids."""
    now = database.clock.now()
    signals = [
        Signal(
            source="survey",
            id=f"nps-{n}",
            kind=SignalKind.NPS,
            occurred_at=now,
            received_at=now,
            customer_id=f"cust-{n}",
            score=1,
        )
        for n in range(2)
    ]
    rules = IntakeRules(load_default_policy(), SlaPolicy(), timedelta(days=30), CASE_IDS)
    await apply_signals(signals, {}, "g", FakeIntakeStore(database), rules, NoWords(), database.clock)
    opening = OpenByHand("cust-9", Severity.MAJOR, None, Tier.STANDARD, "escalated")
    rules_by_hand = CommandRules(SlaPolicy(), case_ids=CASE_IDS)
    await run_command(Submission(opening, Actor("mia", "manager")), FakeCommandStore(database), rules_by_hand)
    return sorted(database.held.cases)


async def batches(case_ids: Sequence[str]) -> AsyncIterator[Sequence[str]]:
    yield case_ids[:2]
    yield case_ids[2:]


def corrections(database: FakeDatabase, case_id: str) -> int:
    return sum(isinstance(e, DeadlinesCorrected) for e in database.held.events[case_id])


async def test_the_apply_corrects_each_open_case_once_and_its_timers_follow() -> None:
    database = FakeDatabase()
    store, case_ids = FakeCommandStore(database), await open_cases(database)
    failures: list[str] = []
    change = await apply_policy(batches(case_ids), store, LONGER, None, lambda c, e: failures.append(c))
    assert (change.looked_at, change.changed, change.failed, failures) == (3, 3, [], [])
    assert [corrections(database, c) for c in case_ids] == [1, 1, 1]
    for case_id in case_ids:
        case = database.held.cases[case_id]
        assert case.resolution_deadline == case.resolution_clock_started_at + timedelta(days=10)
        breach = database.held.timers[case_id, "resolution", TimerKind.BREACH].timer
        assert breach.deadline == case.resolution_deadline
    again = await apply_policy(batches(case_ids), store, LONGER, None, lambda c, e: failures.append(c))
    assert (again.looked_at, again.changed, failures) == (3, 0, [])
    assert [corrections(database, c) for c in case_ids] == [1, 1, 1]


async def test_an_unreadable_case_is_reported_the_others_corrected_and_the_next_apply_corrects_it() -> None:
    database = FakeDatabase()
    store, case_ids = FakeCommandStore(database), await open_cases(database)
    broken = case_ids[1]
    await database.damage(broken)
    failures: list[tuple[str, str]] = []

    def failed(case_id: str, error: Exception) -> None:
        failures.append((case_id, type(error).__name__))

    change = await apply_policy(batches(case_ids), store, LONGER, None, failed)
    assert (change.changed, change.failed, failures) == (2, [broken], [(broken, "ValueError")])
    assert [corrections(database, c) for c in case_ids] == [1, 0, 1]
    await database.repair(broken)
    again = await apply_policy(batches(case_ids), store, LONGER, None, failed)
    assert (again.changed, again.failed) == (1, [])
    assert [corrections(database, c) for c in case_ids] == [1, 1, 1]
