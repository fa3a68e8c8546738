"""Roles, limits, the resolution gate and trends as tables: the rules are the domain's."""

from __future__ import annotations

from dataclasses import replace
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
from service.domain.errors import InvalidValue, MissingField, NotAllowed, WrongState
from service.domain.events import CompensationKind, CompensationRequested, ResolutionType
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Money, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy, decide_trend
from service.domain.workflow import Actor, decide_follow_up, decide_resolve
from tests.cases import CASE_IDS

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
LIMITS = CompensationLimits()
ROOT_CAUSES = {"scheduling", "parts_quality"}


def case(stake: str | None = "100") -> CaseState:
    signal = Signal(
        source="s",
        id="1",
        kind=SignalKind.COMPLAINT,
        occurred_at=NOW,
        received_at=NOW,
        customer_id="c",
        amount_at_stake=Money(Decimal(stake), "EUR") if stake else None,
    )
    c = Classification(severity=Severity.MAJOR, category=Category.OTHER, reasons=(), policy_version="t")
    state = replay(decide_signal(None, signal, c, SlaPolicy(), NOW, case_ids=CASE_IDS))
    assert state is not None
    return state


@pytest.mark.parametrize(
    ("role", "amount", "stake", "waits"),
    [
        ("agent", "50", "100", ()),
        ("agent", "50.01", "100", ("above the agent limit of 50 EUR",)),
        ("manager", "500", "1000", ()),
        ("manager", "500.01", "1000", ("above the manager limit of 500 EUR",)),
        ("owner", "1000", None, ()),
        ("owner", "1000.01", None, ("above the customer limit of 1000 EUR in 90 days: customer c received 0 EUR already",)),
        ("owner", "151", "100", ("more than 1.5x the amount at stake (100 EUR)",)),
        ("agent", "151", "100", ("above the agent limit of 50 EUR", "more than 1.5x the amount at stake (100 EUR)")),
        ("manager", "150", "100", ()),
    ],
)
def test_who_may_grant_how_much_before_approval(
    role: str, amount: str, stake: str | None, waits: tuple[str, ...]
) -> None:
    [event] = decide_request_compensation(
        case(stake),
        "r",
        CompensationKind.REFUND,
        Decimal(amount),
        "EUR",
        "why",
        Actor("x", role),
        LIMITS,
        CompensationHistory(),
        NOW,
    )
    assert isinstance(event, CompensationRequested)
    assert event.needs_approval == waits


@pytest.mark.parametrize(
    ("approver", "amount", "outcome"),
    [
        ("agent", "60", NotAllowed),
        ("manager", "60", "approved"),
        ("manager", "501", NotAllowed),
        ("owner", "5000", "approved"),
    ],
)
def test_who_may_approve_a_waiting_compensation(approver: str, amount: str, outcome: object) -> None:
    state = case(stake="10000")
    for event in decide_request_compensation(
        state, "r", CompensationKind.CREDIT, Decimal(amount), "EUR", "why", Actor("a", "agent"), LIMITS, CompensationHistory(), NOW
    ):
        state = evolve(state, event)
    if outcome == "approved":
        [approved] = decide_approve_compensation(state, "r", Actor("b", approver), LIMITS, CompensationHistory(), NOW)
        assert evolve(state, approved).compensations[0].approved_by == "b"
    else:
        with pytest.raises(NotAllowed):
            decide_approve_compensation(state, "r", Actor("b", approver), LIMITS, CompensationHistory(), NOW)


def test_a_request_id_is_requested_once_and_answered_once() -> None:
    state = case()
    args = ("r", CompensationKind.CREDIT, Decimal(10), "EUR", "why", Actor("a", "agent"), LIMITS, CompensationHistory(), NOW)
    for event in decide_request_compensation(state, *args):
        state = evolve(state, event)
    assert decide_request_compensation(state, *args) == []
    for event in decide_compensation_result(state, "r", True, "PAY-1", NOW):
        state = evolve(state, event)
    assert decide_compensation_result(state, "r", False, "late failure", NOW) == []
    assert state.compensations[0].reference == "PAY-1"


@pytest.mark.parametrize(
    ("role", "resolution_type", "root_cause", "prevention", "error", "field"),
    [
        ("agent", ResolutionType.APOLOGY_ONLY, "scheduling", "x", NotAllowed, None),
        ("manager", None, "scheduling", "x", MissingField, "resolution_type"),
        ("manager", ResolutionType.APOLOGY_ONLY, None, "x", MissingField, "root_cause"),
        ("manager", ResolutionType.APOLOGY_ONLY, " ", "x", MissingField, "root_cause"),
        ("manager", ResolutionType.APOLOGY_ONLY, "bad_luck", "x", InvalidValue, "root_cause"),
        ("owner", ResolutionType.APOLOGY_ONLY, "scheduling", "", MissingField, "prevention_action"),
    ],
)
def test_the_resolution_gate(
    role: str,
    resolution_type: ResolutionType | None,
    root_cause: str | None,
    prevention: str,
    error: type[Exception],
    field: str | None,
) -> None:
    with pytest.raises(error) as refused:
        decide_resolve(case(), resolution_type, root_cause, prevention, Actor("x", role), ROOT_CAUSES, NOW)
    assert getattr(refused.value, "field", None) == field


def test_a_follow_up_needs_a_resolved_case() -> None:
    with pytest.raises(WrongState):
        decide_follow_up(case(), case(), True, "", Actor("x", "agent"), SlaPolicy(), NOW)
    resolved = replace(case(), status=CaseStatus.RESOLVED, resolved_at=NOW)
    unhappy = decide_follow_up(
        resolved, resolved, False, "", Actor("x", "agent"), SlaPolicy(), NOW + timedelta(days=2)
    )
    state = resolved
    for event in unhappy:
        state = evolve(state, event)
    assert state.status is CaseStatus.OPEN and state.resolution_deadline > NOW + timedelta(days=2)


@pytest.mark.parametrize(
    ("resolved", "active", "publishes", "active_after"),
    [(5, False, False, False), (6, False, True, True), (7, True, False, True), (3, True, False, False)],
)
def test_a_trend_is_published_once_per_crossing(
    resolved: int, active: bool, publishes: bool, active_after: bool
) -> None:
    event, above = decide_trend("scheduling", [f"c{n}" for n in range(resolved)], active, TrendPolicy(), NOW)
    assert (event is not None, above) == (publishes, active_after)
