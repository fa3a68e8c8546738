"""What a finance auditor asks first: four eyes, limits per case, one currency, and the edges around them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.domain.case import CaseState, CaseStatus, decide_signal, evolve, replay
from service.domain.compensation import (
    CompensationHistory,
    decide_approve_compensation,
    decide_compensation_result,
    decide_request_compensation,
)
from service.domain.compensation_limits import CompensationLimits
from service.domain.errors import InvalidValue, NotAllowed, WrongState
from service.domain.events import CaseEvent, CompensationKind, ResolutionType
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Money, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.workflow import (
    Actor,
    decide_follow_up,
    decide_reopen,
    decide_resolve,
)
from tests.cases import CASE_IDS

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
LIMITS = CompensationLimits()
SLA = SlaPolicy()
ANA, BO = Actor("ana", "agent"), Actor("bo", "agent")
MIA, MAX = Actor("mia", "manager"), Actor("max", "manager")
OLU, OTTO = Actor("olu", "owner"), Actor("otto", "owner")


def then(state: CaseState, events: Sequence[CaseEvent]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    return state


def signal(n: int, at: datetime, stake: Money | None) -> Signal:
    return Signal(
        source="s",
        id=str(n),
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at,
        customer_id="c",
        amount_at_stake=stake,
    )


CLASSIFIED = Classification(severity=Severity.MAJOR, category=Category.OTHER, reasons=(), policy_version="t")


def case(stake: str | None = None, currency: str = "EUR") -> CaseState:
    money = Money(Decimal(stake), currency) if stake is not None else None
    state = replay(decide_signal(None, signal(1, NOW, money), CLASSIFIED, SLA, NOW, case_ids=CASE_IDS))
    assert state is not None
    return state


def request(state: CaseState, request_id: str, amount: str, actor: Actor, currency: str = "EUR") -> CaseState:
    return then(
        state,
        decide_request_compensation(
            state, request_id, CompensationKind.REFUND, Decimal(amount), currency, "why", actor, LIMITS, CompensationHistory(), NOW
        ),
    )


def waits(state: CaseState, request_id: str) -> tuple[str, ...]:
    return next(c.needs_approval for c in state.compensations if c.request_id == request_id)


# --- four eyes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "amount"),
    [(MIA, "600"), (OLU, "200")],  # a manager above their limit; an owner above 1.5x the stake of 100
)
def test_no_one_approves_a_compensation_they_requested_whatever_their_role(
    requester: Actor, amount: str
) -> None:
    state = request(case("100"), "r", amount, requester)
    assert state.compensations[0].needs_approval
    with pytest.raises(NotAllowed) as refused:
        decide_approve_compensation(state, "r", requester, LIMITS, CompensationHistory(), NOW)
    assert "requested it" in refused.value.detail and "four eyes" in refused.value.detail
    [approved] = decide_approve_compensation(state, "r", OTTO, LIMITS, CompensationHistory(), NOW)  # another owner may
    assert then(state, [approved]).compensations[0].approved_by == "otto"


def test_an_owners_waiting_request_is_approved_by_another_owner_or_a_manager_within_the_manager_limit() -> (
    None
):
    small = request(case("100"), "r", "200", OLU)
    assert decide_approve_compensation(small, "r", MIA, LIMITS, CompensationHistory(), NOW)
    large = request(case("1000"), "r", "1600", OLU)
    with pytest.raises(NotAllowed):
        decide_approve_compensation(large, "r", MIA, LIMITS, CompensationHistory(), NOW)
    assert decide_approve_compensation(large, "r", OTTO, LIMITS, CompensationHistory(), NOW)


def test_the_requester_cannot_approve_even_a_request_that_went_out_on_their_own_authority() -> None:
    state = request(case("100"), "r", "40", MIA)
    assert state.compensations[0].status == "requested"
    with pytest.raises(NotAllowed):
        decide_approve_compensation(state, "r", MIA, LIMITS, CompensationHistory(), NOW)


# --- limits per case, not per request -----------------------------------------------------------------------


def test_splitting_a_refund_into_pieces_does_not_slip_past_the_agents_limit() -> None:
    state = case("1000")
    for n in range(4):
        state = request(state, f"r{n}", "50", ANA)
    assert [c.status for c in state.compensations] == ["requested"] + ["awaiting_approval"] * 3
    assert waits(state, "r1") == (
        "above the agent limit of 50 EUR: ana already granted 50.00 EUR on this case",
    )


def test_the_running_total_is_per_actor_and_counts_only_what_went_out_without_approval() -> None:
    state = request(case("1000"), "big", "100", ANA)  # waits, then a manager approves it
    state = then(state, decide_approve_compensation(state, "big", MIA, LIMITS, CompensationHistory(), NOW))
    state = request(state, "mine", "50", ANA)
    state = request(state, "hers", "50", BO)
    assert waits(state, "mine") == () and waits(state, "hers") == ()


def test_a_failed_request_frees_the_budget_a_settled_or_pending_one_does_not() -> None:
    state = request(case("1000"), "r1", "50", ANA)
    state = then(state, decide_compensation_result(state, "r1", False, "card expired", NOW))
    state = request(state, "r2", "50", ANA)
    assert waits(state, "r2") == ()
    state = then(state, decide_compensation_result(state, "r2", True, "PAY-1", NOW))
    state = request(state, "r3", "1", ANA)
    assert waits(state, "r3") == (
        "above the agent limit of 50 EUR: ana already granted 50.00 EUR on this case",
    )


def test_the_stake_rule_counts_everything_granted_on_the_case_too() -> None:
    state = request(case("100"), "r1", "100", OLU)
    state = request(state, "r2", "60", OTTO)
    assert waits(state, "r1") == ()
    assert waits(state, "r2") == (
        "more than 1.5x the amount at stake (100 EUR): 100.00 EUR already granted on this case",
    )


# --- one currency per case ----------------------------------------------------------------------------------


def test_with_no_stake_the_first_compensation_fixes_the_cases_currency() -> None:
    state = request(case(), "r1", "20", ANA, "EUR")
    state = then(state, decide_compensation_result(state, "r1", False, "declined", NOW))
    with pytest.raises(InvalidValue) as refused:
        request(state, "r2", "20", ANA, "USD")  # even after the first one failed: the case is in EUR
    assert refused.value.field == "currency" and "EUR" in refused.value.detail
    assert request(state, "r3", "20", ANA, "EUR").compensations[-1].currency == "EUR"


def test_a_later_stake_in_another_currency_does_not_change_a_case_its_compensations_put_in_one() -> None:
    state = request(case(), "r1", "20", ANA, "EUR")
    attached = then(
        state, decide_signal(state, signal(2, NOW, Money(Decimal(500), "USD")), CLASSIFIED, SLA, NOW, case_ids=CASE_IDS)
    )
    assert attached.amount_at_stake is None
    resolved = then(state, decide_resolve(state, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, NOW))
    later = NOW + timedelta(days=1)
    reopening = signal(3, later, Money(Decimal(500), "USD"))
    reopened = then(resolved, decide_signal(resolved, reopening, CLASSIFIED, SLA, later, case_ids=CASE_IDS))
    assert reopened.status is CaseStatus.OPEN and reopened.amount_at_stake is None
    with pytest.raises(InvalidValue):
        request(reopened, "r2", "20", ANA, "USD")
    same = then(
        reopened, decide_signal(reopened, signal(4, later, Money(Decimal(80), "EUR")), CLASSIFIED, SLA, later, case_ids=CASE_IDS)
    )
    assert same.amount_at_stake == Money(Decimal(80), "EUR")  # a stake in the case's own currency counts


# --- the edges: a zero stake, a closed case, billing answering a request it was never sent -------------------


def test_a_zero_stake_means_nothing_at_risk_so_every_compensation_waits_for_approval() -> None:
    state = request(case("0"), "r", "1", OLU)
    assert waits(state, "r") == ("nothing is at stake (0 EUR): every compensation needs approval",)
    with pytest.raises(InvalidValue):
        request(state, "r2", "1", OLU, "USD")  # a zero stake still names the case's currency


def closed_with_a_waiting_request() -> CaseState:
    state = request(case("100"), "waiting", "400", ANA)
    state = request(state, "sent", "40", ANA)
    state = then(state, decide_resolve(state, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, NOW))
    state = then(state, decide_follow_up(state, state, True, "happy", ANA, SLA, NOW))
    assert state.status is CaseStatus.CLOSED
    return state


def test_an_approval_on_a_closed_case_is_refused_until_the_case_is_reopened() -> None:
    state = closed_with_a_waiting_request()
    with pytest.raises(WrongState) as refused:
        decide_approve_compensation(state, "waiting", OTTO, LIMITS, CompensationHistory(), NOW)
    assert "closed" in refused.value.detail and "reopen" in refused.value.detail
    reopened = then(state, decide_reopen(state, state, "customer called back", MIA, SLA, NOW))
    assert decide_approve_compensation(reopened, "waiting", OTTO, LIMITS, CompensationHistory(), NOW)


def test_billings_answer_to_a_request_that_went_out_still_lands_on_a_closed_case() -> None:
    state = closed_with_a_waiting_request()
    [settled] = decide_compensation_result(state, "sent", True, "PAY-1", NOW)
    assert then(state, [settled]).compensations[1].reference == "PAY-1"


def test_billings_answer_to_a_request_still_waiting_for_approval_is_refused_with_its_reason() -> None:
    state = request(case("100"), "r", "400", ANA)
    for settled in (True, False):
        with pytest.raises(WrongState) as refused:
            decide_compensation_result(state, "r", settled, "PAY-1", NOW)
        assert "waits for approval" in refused.value.detail and "never sent" in refused.value.detail
