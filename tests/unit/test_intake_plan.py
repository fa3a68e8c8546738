"""Planning a batch: in-order decisions, history modifiers, outcomes and stream versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.adapters.sentiment import VaderSentiment
from service.domain.case import CaseState, CaseStatus
from service.domain.events import CaseOpened
from service.domain.intake import Outcome, plan_intake
from service.domain.severity import Severity, load_default_policy
from service.domain.signals import Signal, SignalKind, Tier
from service.domain.sla import SlaPolicy
from tests.cases import CASE_IDS

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
POLICY = load_default_policy()
WINDOW = timedelta(days=30)


def nps(n: int, score: int, customer: str = "c-1", at: datetime = T0, tier: Tier = Tier.STANDARD) -> Signal:
    return Signal(
        source="survey",
        id=f"n-{n}",
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id=customer,
        score=score,
        customer_tier=tier,
    )


def plan(signals: list[Signal], recent: dict[str, list[datetime]] | None = None):  # type: ignore[no-untyped-def]
    scores = [VaderSentiment().compound(s.text) for s in signals]
    return plan_intake(signals, scores, {}, recent or {}, POLICY, SlaPolicy(), WINDOW, T0, case_ids=CASE_IDS)


def test_one_batch_opens_then_attaches_then_escalates_in_order() -> None:
    result = plan([nps(1, 6), nps(2, 6, at=T0 + timedelta(hours=1)), nps(3, 0, at=T0 + timedelta(hours=2))])
    assert [a.outcome for a in result.applied] == [Outcome.OPENED, Outcome.ATTACHED, Outcome.ESCALATED]
    assert [(e.stream_id, e.version) for e in result.events] == [
        (CASE_IDS.for_signal(nps(1, 6), 1), v) for v in (1, 2, 3, 4)
    ]
    assert result.cases[CASE_IDS.for_signal(nps(1, 6), 1)].version == 4


def test_not_a_failure_opens_nothing() -> None:
    result = plan([nps(1, 9)])
    assert [a.outcome for a in result.applied] == [Outcome.NOT_A_FAILURE]
    assert result.events == [] and result.cases == {}


def test_the_third_failure_in_thirty_days_is_raised_one_level() -> None:
    earlier = {"c-1": [T0 - timedelta(days=10), T0 - timedelta(days=29)]}
    result = plan([nps(1, 6)], recent=earlier)
    assert result.applied[0].classification.severity is Severity.MODERATE


def test_failures_older_than_the_window_do_not_count() -> None:
    earlier = {"c-1": [T0 - timedelta(days=31), T0 - timedelta(days=40)]}
    assert plan([nps(1, 6)], recent=earlier).applied[0].classification.severity is Severity.MINOR


def test_failures_earlier_in_the_same_batch_count_toward_the_modifier() -> None:
    result = plan([nps(1, 6), nps(2, 6), nps(3, 6)])
    assert [a.classification.severity for a in result.applied] == [
        Severity.MINOR,
        Severity.MINOR,
        Severity.MODERATE,
    ]


def test_customers_get_separate_cases() -> None:
    result = plan([nps(1, 2, customer="a"), nps(2, 2, customer="b")])
    assert set(result.cases) == {CASE_IDS.for_signal(nps(1, 2, customer="a"), 1), CASE_IDS.for_signal(nps(2, 2, customer="b"), 1)}


@given(
    earlier=st.lists(st.integers(min_value=-45, max_value=5), max_size=12),
    batch=st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=8),
)
def test_the_repeat_modifier_counts_exactly_the_failures_in_the_window(
    earlier: list[int], batch: list[int]
) -> None:
    """However unordered the stored history and the batch, each signal counts the failures within 30 days
    before it (and at its moment): the stored ones and those earlier in the batch."""
    recent = {"c-1": [T0 + timedelta(days=d) for d in earlier]}
    signals = [nps(n, 6, at=T0 + timedelta(days=d)) for n, d in enumerate(batch)]
    result = plan(signals, recent)
    threshold = POLICY.modifiers.min_prior_failures_in_window
    for n, applied in enumerate(result.applied):
        at = signals[n].occurred_at
        before = [*recent["c-1"], *(s.occurred_at for s in signals[:n])]
        prior = sum(1 for t in before if at - WINDOW <= t <= at)
        assert ("modifier:repeat_failures" in applied.classification.reasons) == (prior >= threshold)


def resolved_case(reopens: int, resolved_at: datetime) -> CaseState:
    [first] = plan([nps(0, 6, at=resolved_at - timedelta(days=1))]).cases.values()
    return replace(first, status=CaseStatus.RESOLVED, resolved_at=resolved_at, reopen_count=reopens)


def test_reopened_twice_raises_the_reopened_case_but_not_the_customers_next_one() -> None:
    twice = resolved_case(reopens=2, resolved_at=T0 - timedelta(days=60))
    result = plan_intake([nps(1, 6)], [None], {"c-1": twice}, {}, POLICY, SlaPolicy(), WINDOW, T0, case_ids=CASE_IDS)
    [applied] = result.applied
    assert applied.outcome is Outcome.OPENED and applied.case_id == CASE_IDS.for_signal(nps(1, 6), 2) != twice.case_id
    assert applied.classification.severity is Severity.MINOR
    assert "modifier:repeat_reopens" not in applied.classification.reasons
    once = resolved_case(reopens=1, resolved_at=T0 - timedelta(days=1))
    result = plan_intake([nps(2, 6)], [None], {"c-1": once}, {}, POLICY, SlaPolicy(), WINDOW, T0, case_ids=CASE_IDS)
    [applied] = result.applied
    assert applied.outcome is Outcome.REOPENED and applied.classification.severity is Severity.MODERATE
    assert "modifier:repeat_reopens" in applied.classification.reasons


def test_a_clock_rule_is_recorded_among_the_signals_reasons_and_on_its_case() -> None:
    sla = SlaPolicy()
    ahead = replace(nps(1, 2), occurred_at=T0 + timedelta(days=3))
    old = replace(nps(2, 2, customer="c-2"), occurred_at=T0 - timedelta(days=400))
    fine = replace(nps(3, 2, customer="c-3"), occurred_at=T0 - timedelta(hours=2))
    result = plan([ahead, old, fine])
    reasons = [a.classification.reasons for a in result.applied]
    assert reasons == [("nps:0-3", "clock:future_time"), ("nps:0-3", "clock:too_old"), ("nps:0-3",)]
    opened = [e.event for e in result.events]
    assert [e.signal.reasons for e in opened if isinstance(e, CaseOpened) and e.signal] == reasons
    assert [e.opened_at for e in opened if isinstance(e, CaseOpened)] == [T0, T0, fine.occurred_at]
    assert sla.clock_skew == timedelta(minutes=5) and sla.max_signal_age == timedelta(days=30)
