"""The staff-command use case on the in-memory store (held to PostgreSQL's behaviour by tests/store_behaviour.py):
opening, repeating a key, If-Match, a lost race, the policy apply's correction and billing's answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from service.app.commands import CaseNotFound, CommandStore, Submission, land_compensation_result, run_command
from service.app.policy import correct_case
from service.domain.commands import AddNote, Assign, CommandRules, OpenByHand, RequestCompensation
from service.domain.compensation import CompensationStatus
from service.domain.errors import ConcurrencyConflict, InvalidValue, StaleVersion, WrongState
from service.domain.events import CompensationKind, NoteAdded
from service.domain.severity import Severity
from service.domain.signals import Money, Tier
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeCommandStore

RULES = CommandRules(SlaPolicy(), case_ids=CASE_IDS)
MIA, ANA = Actor("mia", "manager"), Actor("ana", "agent")
OPEN = OpenByHand("cust-1", Severity.MAJOR, None, Tier.STANDARD, "escalated")


async def test_a_case_opened_by_hand_once_per_key_and_never_twice_while_open() -> None:
    store = FakeCommandStore()
    first = await run_command(Submission(OPEN, MIA, idempotency_key="k-1"), store, RULES)
    assert first.opened and first.state.version == 1 and not first.repeated
    again = await run_command(Submission(OPEN, MIA, idempotency_key="k-1"), store, RULES)
    assert again.repeated and again.opened and again.state == first.state and again.events == ()
    with pytest.raises(WrongState, match="already has open case"):
        await run_command(Submission(OPEN, MIA), store, RULES)
    assert len(store.held.cases) == 1


async def test_a_repeated_key_answers_with_the_case_as_its_command_left_it() -> None:
    store = FakeCommandStore()
    case = (await run_command(Submission(OPEN, MIA), store, RULES)).state
    note = Submission(AddNote("called"), ANA, case.case_id, idempotency_key="n-1")
    noted = await run_command(note, store, RULES)
    await run_command(Submission(Assign("ana"), ANA, case.case_id), store, RULES)
    again = await run_command(note, store, RULES)
    assert again.state == noted.state and again.state.version == 2 and again.repeated
    with pytest.raises(InvalidValue) as refused:
        await run_command(Submission(Assign("bo"), ANA, case.case_id, idempotency_key="n-1"), store, RULES)
    assert refused.value.field == "Idempotency-Key"


async def test_a_command_decided_on_an_older_version_is_refused_and_changes_nothing() -> None:
    store = FakeCommandStore()
    case = (await run_command(Submission(OPEN, MIA), store, RULES)).state
    await run_command(Submission(AddNote("one"), ANA, case.case_id, expected_version=1), store, RULES)
    with pytest.raises(StaleVersion):
        await run_command(Submission(AddNote("two"), ANA, case.case_id, expected_version=1), store, RULES)
    assert store.held.cases[case.case_id].version == 2


async def test_a_command_on_no_case_is_not_found() -> None:
    with pytest.raises(CaseNotFound):
        await run_command(Submission(AddNote("x"), ANA, "no-such-case"), FakeCommandStore(), RULES)


class LosesRaces(FakeCommandStore):
    """Another writer appends to the case just before each of the first `losses` transactions commits."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses

    def transaction(self):  # type: ignore[no-untyped-def]
        inner = super().transaction()
        store = self

        class Racing:
            async def __aenter__(self):  # type: ignore[no-untyped-def]
                self.tx = await inner.__aenter__()
                return self.tx

            async def __aexit__(self, *exc: object) -> None:
                if exc[0] is None and store.losses > 0 and self.tx.changed:
                    store.losses -= 1
                    await inner.__aexit__(ConcurrencyConflict, ConcurrencyConflict("lost"), None)
                    raise ConcurrencyConflict("UniqueViolationError")
                await inner.__aexit__(*exc)  # type: ignore[arg-type]

        return Racing()


async def test_a_lost_race_is_decided_again_and_applied_once() -> None:
    store = LosesRaces(0)
    case = (await run_command(Submission(OPEN, MIA), store, RULES)).state
    store.losses = 3
    result = await run_command(Submission(AddNote("once"), ANA, case.case_id), store, RULES)
    assert store.losses == 0 and result.state.version == 2
    assert [type(e) for e in store.held.events[case.case_id]].count(NoteAdded) == 1


async def test_the_policy_apply_corrects_an_open_case_once() -> None:
    store: CommandStore = FakeCommandStore()
    case = (await run_command(Submission(OPEN, MIA), store, RULES)).state
    longer = SlaPolicy(resolution={Severity.MAJOR: timedelta(hours=48)})
    correction = await correct_case(case.case_id, store, longer, None)
    assert correction is not None and correction.corrections
    corrected = await run_command(Submission(AddNote("x"), ANA, case.case_id), store, RULES)
    assert corrected.state.resolution_deadline == case.opened_at + timedelta(hours=48)
    assert await correct_case(case.case_id, store, longer, None) is None  # nothing moves a second time


async def test_billing_answers_land_once_on_the_request_that_asked() -> None:
    store = FakeCommandStore()
    staked = replace(OPEN, stake=Money(Decimal(100), "EUR"))  # within the manager's limit: it goes to billing
    case = (await run_command(Submission(staked, MIA), store, RULES)).state
    refund = RequestCompensation(CompensationKind.CREDIT, Decimal(5), "EUR", "late")
    requested = await run_command(Submission(refund, MIA, case.case_id), store, RULES)
    [compensation] = requested.state.compensations

    class Lookup:
        async def case_for_request(self, request_id: str) -> str | None:
            return case.case_id if request_id == compensation.request_id else None

    for _ in range(2):  # a re-delivered answer changes nothing
        await land_compensation_result(compensation.request_id, True, "", Lookup(), store, RULES.sla)
    [settled] = store.held.cases[case.case_id].compensations
    assert settled.status is CompensationStatus.SETTLED
    assert len(store.held.events[case.case_id]) == requested.state.version + 1
    with pytest.raises(InvalidValue):
        await land_compensation_result("no-such-request", True, "", Lookup(), store, RULES.sla)
