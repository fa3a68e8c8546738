"""Root-cause trends on the in-memory stores (held to PostgreSQL's behaviour by tests/store_behaviour): a
crossing published once, the review timer that ends a trend as its oldest cases leave the window, and
reopens by staff and by a signal."""

from __future__ import annotations

from datetime import timedelta

from service.app.commands import Submission, run_command
from service.app.intake import IntakeRules, apply_signals
from service.app.trends import review_due_trends
from service.domain.commands import CommandRules, OpenByHand, Reopen, Resolve
from service.domain.events import ResolutionType
from service.domain.intake import Outcome
from service.domain.severity import Severity, load_default_policy
from service.domain.signals import Signal, SignalKind, Tier
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendDetected, TrendPolicy, trend_stream
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeCommandStore, FakeDatabase, FakeIntakeStore, FakeTrendStore

TAG = "scheduling"
POLICY = TrendPolicy(threshold=3, window=timedelta(days=90))
RULES = CommandRules(SlaPolicy(), root_causes={TAG}, case_ids=CASE_IDS)
MIA = Actor("mia", "manager")


async def resolved(database: FakeDatabase, customer: str) -> str:
    """A case opened by hand for the customer and resolved now with the tag; its id."""
    store = FakeCommandStore(database)
    opening = OpenByHand(customer, Severity.MINOR, None, Tier.STANDARD, "escalated by hand")
    case_id = (await run_command(Submission(opening, MIA), store, RULES)).state.case_id
    resolve = Resolve(ResolutionType.APOLOGY_ONLY, TAG, "buffers")
    await run_command(Submission(resolve, MIA, case_id), store, RULES, POLICY)
    return case_id


def crossings(database: FakeDatabase) -> list[TrendDetected]:
    """The tag's stream: what the relay publishes, once each."""
    return [e for e in database.held.events.get(trend_stream(TAG), []) if isinstance(e, TrendDetected)]


async def test_a_trend_is_published_once_per_crossing_and_ends_when_its_oldest_cases_leave_the_window() -> (
    None
):
    database = FakeDatabase()
    trends = FakeTrendStore(database)
    oldest = [await resolved(database, "trend-0"), await resolved(database, "trend-1")]
    database.clock.advance(timedelta(days=10))
    await resolved(database, "trend-2")
    await resolved(database, "trend-3")  # a fourth while it is a trend: no second crossing
    assert [c.count for c in crossings(database)] == [3]
    database.clock.advance(
        timedelta(days=80)
    )  # the oldest are resolved exactly a window ago: they still count
    assert await review_due_trends(trends, POLICY, 10) == []
    database.clock.advance(timedelta(microseconds=1))
    [review] = await review_due_trends(trends, POLICY, 10)
    assert (review.tag, review.was_trend, review.is_trend, review.event) == (TAG, True, False, None)
    assert await review_due_trends(trends, POLICY, 10) == []  # below the threshold: nothing to wait for
    await resolved(database, "trend-4")
    assert [c.count for c in crossings(database)] == [3, 3]
    assert set(crossings(database)[1].case_ids) & set(oldest) == set()


async def test_a_staff_reopen_below_the_threshold_ends_the_trend_at_once_and_it_can_cross_again() -> None:
    database = FakeDatabase()
    case_ids = [await resolved(database, f"trend-{n}") for n in range(3)]
    assert database.held.trends[TAG].active
    reopen = Submission(Reopen("the fix did not hold"), MIA, case_ids[-1])
    await run_command(reopen, FakeCommandStore(database), RULES, POLICY)
    assert not database.held.trends[TAG].active
    resolve = Resolve(ResolutionType.APOLOGY_ONLY, TAG, "buffers")
    await run_command(Submission(resolve, MIA, case_ids[-1]), FakeCommandStore(database), RULES, POLICY)
    assert [c.count for c in crossings(database)] == [3, 3]


class NoWords:
    def compound(self, text: str | None) -> float | None:
        return None


async def test_a_signal_that_reopens_a_resolved_case_has_its_tag_reviewed_by_the_loop() -> None:
    database = FakeDatabase()
    case_ids = [await resolved(database, f"trend-{n}") for n in range(3)]
    database.clock.advance(timedelta(hours=1))
    now = database.clock.now()
    nps = Signal(
        source="survey",
        id="nps-trend-0",
        kind=SignalKind.NPS,
        occurred_at=now,
        received_at=now,
        customer_id="trend-0",
        score=1,
    )
    rules = IntakeRules(load_default_policy(), RULES.sla, timedelta(days=30), CASE_IDS)
    result = await apply_signals([nps], {}, "g", FakeIntakeStore(database), rules, NoWords(), database.clock)
    assert [(a.outcome, a.case_id) for a in result.applied] == [(Outcome.REOPENED, case_ids[0])]
    assert database.held.trends[TAG].active  # the intake only asks: the count is the loop's to take
    [review] = await review_due_trends(FakeTrendStore(database), POLICY, 10)
    assert (review.tag, review.was_trend, review.is_trend, review.event) == (TAG, True, False, None)
    assert await review_due_trends(FakeTrendStore(database), POLICY, 10) == []
