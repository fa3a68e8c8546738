"""Limits that hold in every currency, across a customer's cases and across an actor's day (issue 19)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.case import CaseState, Compensation, CompensationStatus, decide_signal, evolve, replay
from service.domain.compensation import (
    CompensationHistory,
    actor_granted,
    customer_received,
    decide_approve_compensation,
    decide_request_compensation,
)
from service.domain.compensation_limits import CompensationLimits, CurrencyLimits, LimitRule
from service.domain.errors import InvalidValue, NotAllowed
from service.domain.events import CaseEvent, CompensationKind, CompensationRequested
from service.domain.money import fund_codes
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Money, Signal, SignalKind, Tier
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor, decide_open_by_hand
from tests.cases import CASE_IDS

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
ANA, MIA, OLU, OTTO = Actor("ana", "agent"), Actor("mia", "manager"), Actor("olu", "owner"), Actor("otto", "owner")
EUR = CurrencyLimits(
    per_case=(
        LimitRule({"agent": Decimal(100), "manager": Decimal(800), "owner": None}, tiers=frozenset({Tier.PLATINUM})),
        LimitRule({"agent": Decimal(20)}, categories=frozenset({Category.SAFETY})),
        LimitRule({"agent": Decimal(50), "manager": Decimal(500), "owner": None}),
    ),
    per_customer=Decimal(1000),
    per_actor_per_day={"agent": Decimal(200), "manager": Decimal(2000), "owner": None},
)
LIMITS = CompensationLimits(currencies={"EUR": EUR})


def then(state: CaseState, events: Sequence[CaseEvent]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    return state


def case(
    stake: str | None = None, tier: Tier = Tier.STANDARD, category: Category = Category.OTHER, customer: str = "c"
) -> CaseState:
    signal = Signal(
        source="s",
        id="1",
        kind=SignalKind.COMPLAINT,
        occurred_at=NOW,
        received_at=NOW,
        customer_id=customer,
        customer_tier=tier,
        amount_at_stake=None if stake is None else Money(Decimal(stake), "EUR"),
    )
    classified = Classification(severity=Severity.MAJOR, category=category, reasons=(), policy_version="t")
    state = replay(decide_signal(None, signal, classified, SlaPolicy(), NOW, case_ids=CASE_IDS))
    assert state is not None
    return state


NO_HISTORY = CompensationHistory()


def request(
    state: CaseState,
    amount: str,
    actor: Actor = ANA,
    currency: str = "EUR",
    history: CompensationHistory = NO_HISTORY,
    limits: CompensationLimits = LIMITS,
) -> CompensationRequested:
    [event] = decide_request_compensation(
        state, "r", CompensationKind.REFUND, Decimal(amount), currency, "why", actor, limits, history, NOW
    )
    assert isinstance(event, CompensationRequested)
    return event


def granted(amount: str, actor: str = "ana", ago: timedelta = timedelta(hours=2), **changes: object) -> Compensation:
    fields: dict[str, object] = {
        "request_id": f"other-{amount}-{actor}-{ago}",
        "kind": CompensationKind.CREDIT,
        "amount": Decimal(amount),
        "currency": "EUR",
        "reason": "before",
        "requested_by": actor,
        "requested_at": NOW - ago,
        "status": CompensationStatus.SETTLED,
        **changes,
    }
    return Compensation(**fields)  # type: ignore[arg-type]


# --- the currency ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(fund_codes()))
def test_fund_codes_and_units_of_account_are_refused_for_compensation(code: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        request(case(), "1", OLU, currency=code)
    assert refused.value.field == "currency" and code in refused.value.detail


@pytest.mark.parametrize("code", ["KWD", "CLP", "JPY", "BHD"])
def test_a_currency_with_no_limits_waits_for_an_owner_whoever_asks(code: str) -> None:
    for actor in (ANA, MIA, OLU):
        event = request(case(), "1", actor, currency=code)
        assert event.needs_owner and event.needs_approval == (
            f"no limits are set in {code}: every compensation in it waits for an owner",
        )


def test_fifty_is_fifty_euros_not_fifty_of_any_currency() -> None:
    assert request(case(), "50").needs_approval == ()
    assert request(case(), "50", currency="KWD").needs_owner


def test_the_first_rule_that_matches_the_case_decides_the_limit() -> None:
    assert request(case(tier=Tier.PLATINUM), "100").needs_approval == ()
    assert request(case(category=Category.SAFETY), "21").needs_approval == ("above the agent limit for category safety of 20 EUR",)
    assert request(case(), "51").needs_approval == ("above the agent limit of 50 EUR",)


def test_a_role_the_matching_rule_does_not_name_needs_approval() -> None:
    waits = request(case(category=Category.SAFETY), "1", MIA).needs_approval
    assert waits == (
        "no manager limit is set in EUR for this case for category safety: every manager's compensation in EUR"
        " needs approval",
    )


# --- across a customer's cases -------------------------------------------------------------------------------


def test_what_the_customer_received_on_other_cases_counts_against_their_limit() -> None:
    history = CompensationHistory(customer=(granted("960", actor="someone"),))
    event = request(case(), "41", history=history)
    assert event.needs_owner
    assert event.needs_approval == (
        "above the customer limit of 1000 EUR in 90 days: customer c received 960 EUR already",
    )
    assert request(case(), "40", history=history).needs_approval == ()


def test_the_customer_window_rolls_and_waiting_or_failed_compensations_were_not_received() -> None:
    history = CompensationHistory(
        customer=(
            granted("900", ago=timedelta(days=91)),
            granted("900", status=CompensationStatus.FAILED),
            granted("900", status=CompensationStatus.AWAITING_APPROVAL, needs_approval=("x",)),
        )
    )
    assert customer_received(case(), history, "EUR", NOW - timedelta(days=90)) == 0
    assert request(case(), "50", history=history).needs_approval == ()


# --- across an actor's day ------------------------------------------------------------------------------------


def test_an_agent_splitting_refunds_over_many_cases_meets_their_daily_limit() -> None:
    history = CompensationHistory(actor=(granted("50"), granted("50", ago=timedelta(hours=3)), granted("80")))
    event = request(case(), "21", history=history)
    assert event.needs_owner
    assert event.needs_approval == ("above the daily agent limit of 200 EUR: ana granted without approval 180 EUR already",)
    assert request(case(), "20", history=history).needs_approval == ()


def test_the_daily_total_counts_only_the_last_24_hours_of_own_authority_grants_that_did_not_fail() -> None:
    history = CompensationHistory(
        actor=(
            granted("190", ago=timedelta(hours=25)),
            granted("190", status=CompensationStatus.FAILED),
            granted("190", needs_approval=("above the agent limit of 50 EUR",), approved_by="mia"),
        )
    )
    assert actor_granted(case(), history, "ana", "EUR", NOW - timedelta(days=1)) == 0


# --- who approves ----------------------------------------------------------------------------------------------


def test_a_request_above_a_limit_across_cases_is_approved_by_an_owner_only() -> None:
    history = CompensationHistory(customer=(granted("990", actor="someone"),))
    state = then(case(stake="1000"), [request(case(stake="1000"), "30", history=history)])
    with pytest.raises(NotAllowed, match="waits for an owner"):
        decide_approve_compensation(state, "r", MIA, LIMITS, history, NOW)
    [approved] = decide_approve_compensation(state, "r", OLU, LIMITS, history, NOW)
    assert then(state, [approved]).compensations[0].approved_by == "olu"


def test_a_manager_cannot_approve_what_the_customer_limit_no_longer_covers() -> None:
    state = case(stake="1000")
    state = then(state, [request(state, "300")])  # above the agent's 50: waits for a manager
    assert not state.compensations[0].needs_owner
    since = CompensationHistory(customer=(granted("800", actor="someone", ago=timedelta(minutes=5)),))
    with pytest.raises(NotAllowed, match="customer limit of 1000 EUR"):
        decide_approve_compensation(state, "r", MIA, LIMITS, since, NOW)
    assert decide_approve_compensation(state, "r", MIA, LIMITS, CompensationHistory(), NOW)


def test_a_manager_approves_only_within_their_limit_in_the_requests_currency() -> None:
    limits = CompensationLimits(currencies={"EUR": EUR, "GBP": EUR})
    state = then(case(stake="10000"), [request(case(stake="10000"), "600", limits=limits)])
    with pytest.raises(NotAllowed, match="above the manager limit of 500 EUR"):
        decide_approve_compensation(state, "r", MIA, limits, CompensationHistory(), NOW)


# --- cases opened by hand ----------------------------------------------------------------------------------------


def test_an_agent_may_not_open_a_case_by_hand() -> None:
    with pytest.raises(NotAllowed, match="manager or owner"):
        decide_open_by_hand(None, "c", Severity.MAJOR, None, Tier.STANDARD, "escalated", ANA, SlaPolicy(), NOW, CASE_IDS)


def test_every_compensation_on_a_case_opened_by_hand_waits_unless_its_opener_stated_a_stake() -> None:
    bare = replay(decide_open_by_hand(None, "c", Severity.MAJOR, None, Tier.STANDARD, "x", MIA, SlaPolicy(), NOW, CASE_IDS))
    assert bare is not None and bare.opened_by_hand
    assert request(bare, "1").needs_approval == (
        "the case was opened by hand with no amount at stake: every compensation needs approval",
    )
    staked = replay(
        decide_open_by_hand(
            None, "c", Severity.MAJOR, None, Tier.STANDARD, "x", MIA, SlaPolicy(), NOW, CASE_IDS, Money(Decimal(40), "EUR")
        )
    )
    assert staked is not None and staked.amount_at_stake == Money(Decimal("40"), "EUR")
    assert request(staked, "50").needs_approval == ()
    assert request(staked, "61").needs_approval == ("above the agent limit of 50 EUR", "more than 1.5x the amount at stake (40 EUR)")


# --- the property ------------------------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["EUR", "GBP", "KWD", "JPY"])
AMOUNTS = st.integers(min_value=1, max_value=3000).map(Decimal)
ROLES = st.sampled_from([ANA, MIA, OLU])
LIMITS_WITH_GBP = CompensationLimits(currencies={"EUR": EUR, "GBP": EUR})


@given(
    actor=ROLES,
    currency=CURRENCIES,
    amount=AMOUNTS,
    customer_before=st.integers(min_value=0, max_value=1500),
    actor_before=st.integers(min_value=0, max_value=300),
    tier=st.sampled_from(list(Tier)),
    category=st.sampled_from([Category.OTHER, Category.SAFETY]),
)
def test_no_request_above_any_applicable_limit_reaches_billing_without_the_right_approval(
    actor: Actor,
    currency: str,
    amount: Decimal,
    customer_before: int,
    actor_before: int,
    tier: Tier,
    category: Category,
) -> None:
    state = case(tier=tier, category=category)
    history = CompensationHistory(
        customer=(granted(str(customer_before), actor="someone", currency=currency),) if customer_before else (),
        actor=(granted(str(actor_before), actor=actor.name, currency=currency),) if actor_before else (),
    )
    event = request(state, str(amount), actor, currency, history, LIMITS_WITH_GBP)
    limits = LIMITS_WITH_GBP.currencies.get(currency)
    if not event.needs_approval:  # straight to billing: every limit held
        assert limits is not None
        per_case = LIMITS_WITH_GBP.per_case(actor.role, currency, category, tier)
        daily = LIMITS_WITH_GBP.per_actor_per_day(actor.role, currency)
        assert per_case.covers(amount) and daily.covers(actor_before + amount)
        assert limits.per_customer is None or customer_before + amount <= limits.per_customer
        return
    waiting = then(state, [event])
    for approver in (MIA, OTTO):
        try:
            [approved] = decide_approve_compensation(waiting, "r", approver, LIMITS_WITH_GBP, history, NOW)
        except NotAllowed:
            assert approver is MIA
            continue
        if approver is MIA:  # a manager's approval: within their limit and the customer's, and no owner needed
            assert limits is not None and not event.needs_owner
            assert LIMITS_WITH_GBP.per_case("manager", currency, category, tier).covers(amount)
            assert limits.per_customer is None or customer_before + amount <= limits.per_customer
        assert approved.amount == amount
