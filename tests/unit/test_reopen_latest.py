"""Only a customer's latest case reopens: a customer has one open case, and intake works on the latest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.case import CaseState, CaseStatus, decide_signal, evolve, replay
from service.domain.errors import WrongState
from service.domain.events import CaseEvent, ResolutionType
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.workflow import (
    Actor,
    decide_follow_up,
    decide_open_by_hand,
    decide_reopen,
    decide_resolve,
)
from tests.cases import CASE_IDS

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
SLA = SlaPolicy()
ANA, MIA = Actor("ana", "agent"), Actor("mia", "manager")
CLASSIFIED = Classification(severity=Severity.MAJOR, category=Category.OTHER, reasons=(), policy_version="t")


def then(state: CaseState, events: list[CaseEvent]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    return state


def case() -> CaseState:
    signal = Signal(
        source="s", id="1", kind=SignalKind.COMPLAINT, occurred_at=NOW, received_at=NOW, customer_id="c"
    )
    state = replay(decide_signal(None, signal, CLASSIFIED, SLA, NOW, case_ids=CASE_IDS))
    assert state is not None
    return state


def older_and_newer() -> tuple[CaseState, CaseState]:
    older = case()
    older = then(older, decide_resolve(older, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, NOW))
    opened = decide_open_by_hand(older, "c", Severity.MINOR, None, older.customer_tier, "call", MIA, SLA, NOW, CASE_IDS)
    newer = replay(opened)
    assert newer is not None and newer.ordinal == 2
    return older, newer


def test_an_older_case_is_not_reopened_while_the_customer_has_a_newer_open_case() -> None:
    older, newer = older_and_newer()
    with pytest.raises(WrongState) as unhappy:
        decide_follow_up(older, newer, False, "still broken", ANA, SLA, NOW)
    with pytest.raises(WrongState) as reopened:
        decide_reopen(older, newer, "customer called", MIA, SLA, NOW)
    for refused in (unhappy, reopened):
        assert refused.value.detail == f"customer c has a newer open case {newer.case_id}: work that one"
    assert then(older, decide_follow_up(older, newer, True, "", ANA, SLA, NOW)).status is CaseStatus.CLOSED


def test_an_older_case_is_not_reopened_when_the_customers_newer_case_is_resolved_either() -> None:
    older, newer = older_and_newer()
    newer = then(newer, decide_resolve(newer, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, NOW))
    with pytest.raises(WrongState) as refused:
        decide_reopen(older, newer, "customer called", MIA, SLA, NOW)
    assert refused.value.detail == (
        f"customer c has a newer case {newer.case_id} (resolved): reopen that one instead"
    )
    assert (
        then(newer, decide_reopen(newer, newer, "customer called", MIA, SLA, NOW)).status is CaseStatus.OPEN
    )
