"""Root-cause trends over time: one event per real crossing, a timer for when the tag falls below, reopens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.adapters.sentiment import VaderSentiment
from service.domain.case import CaseState, CaseStatus, Resolution
from service.domain.events import ResolutionType
from service.domain.intake import plan_intake, root_causes_moved
from service.domain.severity import load_default_policy
from service.domain.signals import Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy, falls_below_at, review_trend
from tests.cases import CASE_IDS

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
POLICY = TrendPolicy(threshold=3, window=timedelta(days=10))
TICK = timedelta(microseconds=1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Tag:
    """One tag's resolved cases and stored state, reviewed the way the service does at each moment."""

    def __init__(self) -> None:
        self.resolved: dict[str, datetime] = {}
        self.active = False
        self.published: list[int] = []  # the count of each published crossing
        self.due_at: datetime | None = None

    def resolve(self, case_id: str, at: datetime) -> None:
        self.resolved[case_id] = at
        self.review(at)

    def reopen(self, case_id: str, at: datetime) -> None:
        del self.resolved[case_id]
        self.review(at)

    def review(self, now: datetime) -> None:
        result = review_trend("scheduling", self.resolved, self.active, POLICY, now)
        if result.event is not None:
            self.published.append(result.event.count)
        self.active, self.due_at = result.above, result.due_at

    def fire_due(self) -> None:
        assert self.due_at is not None
        self.review(self.due_at)


def test_a_tag_that_fell_below_as_cases_left_the_window_publishes_its_next_crossing() -> None:
    tag = Tag()
    for n in range(3):
        tag.resolve(f"c{n}", day(n))
    assert tag.published == [3] and tag.due_at == day(0) + POLICY.window + TICK
    tag.fire_due()  # c0 left the window: two remain
    assert (tag.active, tag.due_at, tag.published) == (False, None, [3])
    tag.resolve("c3", day(11))
    assert tag.published == [3, 3] and tag.active


def test_a_tag_that_stays_above_the_threshold_publishes_nothing_new() -> None:
    tag = Tag()
    for n in range(6):
        tag.resolve(f"c{n}", day(n))
    assert tag.published == [3]
    assert tag.due_at == day(3) + POLICY.window + TICK  # when only c4 and c5 are left, not when c0 leaves
    for moment in (day(6), day(10) + TICK, day(12), tag.due_at - TICK):
        tag.review(moment)
        assert tag.active
    tag.fire_due()
    assert tag.published == [3] and not tag.active


def test_the_timer_is_the_moment_the_case_that_keeps_the_tag_at_the_threshold_leaves() -> None:
    times = [day(0), day(4), day(1), day(7)]
    assert falls_below_at(times, POLICY) == day(1) + POLICY.window + TICK
    assert falls_below_at(times[:2], POLICY) is None


def test_a_review_at_the_due_time_sees_the_tag_below_not_one_tick_early() -> None:
    resolved = {"a": day(0), "b": day(1), "c": day(2)}
    due = falls_below_at(resolved.values(), POLICY)
    assert due is not None
    assert review_trend("t", resolved, True, POLICY, due - TICK).above
    assert not review_trend("t", resolved, True, POLICY, due).above


def test_a_reopen_below_the_threshold_ends_the_trend_and_the_next_resolution_publishes_again() -> None:
    tag = Tag()
    for n in range(3):
        tag.resolve(f"c{n}", day(n))
    tag.reopen("c1", day(3))
    assert not tag.active and tag.due_at is None
    tag.resolve("c1", day(4))
    assert tag.published == [3, 3]


def test_a_repeated_review_of_the_same_moment_never_publishes_twice() -> None:
    tag = Tag()
    for n in range(3):
        tag.resolve(f"c{n}", day(n))
    for _ in range(3):
        tag.review(day(2))
    assert tag.published == [3]


# --- which tags a change of cases asks to review ---------------------------------------------------------


def resolved_case(root_cause: str, at: datetime) -> CaseState:
    signal = nps("first", at - timedelta(days=1))
    opened = plan_intake([signal], [None], {}, {}, load_default_policy(), SlaPolicy(), timedelta(days=30), at, case_ids=CASE_IDS)
    [case] = opened.cases.values()
    resolution = Resolution(
        resolution_type=ResolutionType.APOLOGY_ONLY,
        root_cause=root_cause,
        prevention_action="buffers",
        resolved_by="mia",
        resolved_at=at,
    )
    return replace(case, status=CaseStatus.RESOLVED, resolved_at=at, resolution=resolution)


def nps(signal_id: str, at: datetime, score: int = 2) -> Signal:
    return Signal(
        source="survey",
        id=signal_id,
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id="c-1",
        score=score,
    )


def test_a_signal_that_reopens_a_resolved_case_asks_for_a_review_of_its_root_cause() -> None:
    case = resolved_case("scheduling", day(0))
    signal = nps("again", day(2))
    result = plan_intake(
        [signal],
        [VaderSentiment().compound(signal.text)],
        {"c-1": case},
        {},
        load_default_policy(),
        SlaPolicy(),
        timedelta(days=30),
        day(2), case_ids=CASE_IDS,
    )
    assert result.cases[case.case_id].status is CaseStatus.OPEN
    assert result.root_causes == {"scheduling"}


def test_a_closed_case_reopened_by_a_signal_asks_too_and_an_open_case_asks_nothing() -> None:
    closed = replace(resolved_case("billing_error", day(0)), status=CaseStatus.CLOSED)
    rules = (load_default_policy(), SlaPolicy(), timedelta(days=30), day(2))
    assert plan_intake([nps("x", day(2))], [None], {"c-1": closed}, {}, *rules, case_ids=CASE_IDS).root_causes == {
        "billing_error"
    }
    opened = plan_intake([nps("y", day(1))], [None], {}, {}, *rules, case_ids=CASE_IDS)
    assert opened.root_causes == set()
    [case] = opened.cases.values()
    attached = plan_intake([nps("z", day(2))], [None], {"c-1": case}, {}, *rules, case_ids=CASE_IDS)
    assert attached.root_causes == set()


def test_a_resolution_and_a_reopen_both_name_the_tag_that_moved() -> None:
    resolved = resolved_case("scheduling", day(0))
    reopened = replace(resolved, status=CaseStatus.OPEN, resolution=None, resolved_at=None)
    assert root_causes_moved([reopened], {resolved.case_id: resolved}) == {"scheduling"}
    assert root_causes_moved([resolved], {resolved.case_id: reopened}) == {"scheduling"}
    assert root_causes_moved([resolved], {resolved.case_id: replace(resolved, owner="ana")}) == set()
