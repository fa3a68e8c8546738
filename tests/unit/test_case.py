"""The case decider: open, attach, escalate, reopen; severity never drops, deadlines never extend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.case import CaseState, CaseStatus, decide_signal, evolve, replay
from service.domain.events import CaseEscalated, CaseOpened, CaseReopened, SignalAttached
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Money, Signal, SignalKind
from service.domain.sla import SlaPolicy
from tests.cases import CASE_IDS

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night European clocks change: UTC arithmetic only
SLA = SlaPolicy()


def signal(n: int = 1, at: datetime = T0, channel: Channel | None = Channel.EMAIL) -> Signal:
    return Signal(
        source="crm",
        id=f"s-{n}",
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at + timedelta(seconds=3),
        customer_id="c-1",
        channel=channel,
    )


def classified(severity: Severity | None) -> Classification:
    return Classification(severity=severity, category=Category.OTHER, reasons=("test",), policy_version="t")


def opened(severity: Severity = Severity.MINOR) -> CaseState:
    events = decide_signal(None, signal(), classified(severity), SLA, T0, case_ids=CASE_IDS)
    state = replay(events)
    assert state is not None
    return state


def test_a_first_failure_opens_a_case_with_clocks_from_the_failure_time() -> None:
    [event] = decide_signal(None, signal(), classified(Severity.MAJOR), SLA, T0 + timedelta(minutes=5), case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert event.opened_at == T0
    assert event.resolution_deadline == T0 + timedelta(hours=24)
    assert event.first_response_deadline == T0 + timedelta(hours=4)  # email
    assert event.case_id == CASE_IDS.for_signal(signal(), 1)


def test_social_channel_first_response_is_fifteen_minutes() -> None:
    [event] = decide_signal(None, signal(channel=Channel.SOCIAL), classified(Severity.MINOR), SLA, T0, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert event.first_response_deadline == T0 + timedelta(minutes=15)


def test_not_a_failure_decides_nothing() -> None:
    assert decide_signal(None, signal(), classified(None), SLA, T0, case_ids=CASE_IDS) == []


def test_a_second_signal_attaches_and_a_higher_one_escalates_with_the_earlier_deadline() -> None:
    later = T0 + timedelta(hours=70)
    events = decide_signal(opened(), signal(2, at=later), classified(Severity.CRITICAL), SLA, later, case_ids=CASE_IDS)
    assert [type(e) for e in events] == [SignalAttached, CaseEscalated]
    escalated = events[1]
    assert isinstance(escalated, CaseEscalated)
    assert escalated.resolution_deadline == T0 + timedelta(hours=72)  # not later + 4h: never extended


def test_escalation_tightens_the_deadline_to_signal_time_plus_the_new_window() -> None:
    soon = T0 + timedelta(hours=1)
    events = decide_signal(opened(), signal(2, at=soon), classified(Severity.CRITICAL), SLA, soon, case_ids=CASE_IDS)
    state = replay_onto(opened(), events)
    assert state.severity is Severity.CRITICAL
    assert state.resolution_deadline == soon + timedelta(hours=4)


def test_a_lower_signal_attaches_without_lowering_severity() -> None:
    start = opened(Severity.MAJOR)
    events = decide_signal(start, signal(2), classified(Severity.MINOR), SLA, T0, case_ids=CASE_IDS)
    assert [type(e) for e in events] == [SignalAttached]
    assert replay_onto(start, events).severity is Severity.MAJOR


def resolved(at: datetime, severity: Severity = Severity.MAJOR) -> CaseState:
    return replace(opened(severity), status=CaseStatus.RESOLVED, resolved_at=at)


def test_a_signal_within_the_reopen_window_reopens_and_restarts_the_clock_from_now() -> None:
    done = T0 + timedelta(days=2)
    now = done + timedelta(days=13)
    [event] = decide_signal(resolved(done), signal(2, at=now), classified(Severity.MINOR), SLA, now, case_ids=CASE_IDS)
    assert isinstance(event, CaseReopened)
    state = evolve(resolved(done), event)
    assert state.status is CaseStatus.OPEN
    assert state.severity is Severity.MAJOR
    assert state.resolution_deadline == now + timedelta(hours=24)
    assert state.resolution_deadline > now  # a reopen never breaches instantly
    assert state.reopen_count == 1


def test_a_signal_after_the_reopen_window_opens_the_customers_next_case() -> None:
    done = T0 + timedelta(days=2)
    late = done + timedelta(days=15)
    [event] = decide_signal(resolved(done), signal(2, at=late), classified(Severity.MINOR), SLA, late, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert event.ordinal == 2
    assert event.case_id == CASE_IDS.for_signal(signal(2, at=late), 2) != resolved(done).case_id


def replay_onto(state: CaseState, events: list) -> CaseState:  # type: ignore[type-arg]
    for e in events:
        state = evolve(state, e)
    return state


severities = st.sampled_from([None, *Severity])
steps = st.lists(st.tuples(severities, st.integers(min_value=0, max_value=96 * 60)), min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_severity_never_drops_and_deadline_never_extends_and_replay_equals_live_state(
    stream: list[tuple[Severity | None, int]],
) -> None:
    state: CaseState | None = None
    history = []
    for n, (severity, minutes) in enumerate(stream):
        at = T0 + timedelta(minutes=minutes)
        events = decide_signal(state, signal(n, at=at), classified(severity), SLA, at, case_ids=CASE_IDS)
        before = state
        for event in events:
            state = evolve(state, event)
        history.extend(events)
        if before is not None and state is not None:
            assert state.severity >= before.severity
            assert state.resolution_deadline <= before.resolution_deadline
            assert state.version == before.version + len(events)
    assert replay(history) == state


def test_a_signal_without_a_channel_gets_the_email_first_response_window() -> None:
    """The contract leaves a missing channel open: the first-response window falls back to email's (4 h)."""
    [event] = decide_signal(None, signal(channel=None), classified(Severity.MINOR), SLA, T0, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert event.channel is None
    assert event.first_response_deadline == T0 + timedelta(hours=4)
    shorter_email = SlaPolicy(first_response={**SLA.first_response, Channel.EMAIL: timedelta(hours=2)})
    [event] = decide_signal(None, signal(channel=None), classified(Severity.MINOR), shorter_email, T0, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened) and event.first_response_deadline == T0 + timedelta(hours=2)


def arriving(at: datetime, arrived: datetime, n: int = 1) -> Signal:
    return replace(signal(n, at=at), received_at=arrived)


def test_a_signal_dated_ahead_of_its_arrival_beyond_the_skew_starts_the_clocks_at_arrival() -> None:
    arrived = T0
    ahead = arrived + SLA.clock_skew + timedelta(seconds=1)
    [event] = decide_signal(None, arriving(ahead, arrived), classified(Severity.MAJOR), SLA, arrived, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert (event.opened_at, event.resolution_deadline) == (arrived, arrived + timedelta(hours=24))
    assert event.signal is not None and event.signal.occurred_at == ahead  # the signal keeps its own time
    within = arrived + SLA.clock_skew
    [event] = decide_signal(None, arriving(within, arrived), classified(Severity.MAJOR), SLA, arrived, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened) and event.opened_at == within  # a small skew is tolerated


def test_a_signal_older_than_the_maximum_age_starts_the_clocks_at_arrival() -> None:
    arrived = T0
    old = arrived - SLA.max_signal_age - timedelta(seconds=1)
    [event] = decide_signal(None, arriving(old, arrived), classified(Severity.MAJOR), SLA, arrived, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    assert (event.opened_at, event.first_response_deadline) == (arrived, arrived + timedelta(hours=4))
    assert event.signal is not None and event.signal.occurred_at == old
    late = arrived - SLA.max_signal_age
    [event] = decide_signal(None, arriving(late, arrived), classified(Severity.MAJOR), SLA, arrived, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened) and event.opened_at == late  # clocks at event time: a feature


def test_an_escalation_counts_its_new_window_from_the_clock_start_not_a_future_time() -> None:
    arrived = T0 + timedelta(hours=1)
    ahead = arrived + timedelta(days=30)
    events = decide_signal(opened(), arriving(ahead, arrived, 2), classified(Severity.CRITICAL), SLA, arrived, case_ids=CASE_IDS)
    escalated = events[-1]
    assert isinstance(escalated, CaseEscalated)
    assert escalated.resolution_deadline == arrived + timedelta(hours=4)


def test_a_signal_dated_before_the_resolution_is_recorded_on_the_case_and_reopens_nothing() -> None:
    """A failure signalled before the resolution is one the resolution answered, however late it arrives."""
    done = T0 + timedelta(days=2)
    before, arrived = done - timedelta(hours=1), done + timedelta(hours=2)
    case = resolved(done)
    events = decide_signal(case, arriving(before, arrived, 2), classified(Severity.CRITICAL), SLA, arrived, case_ids=CASE_IDS)
    assert [type(e) for e in events] == [SignalAttached]
    after = replay_onto(case, events)
    assert (after.status, after.severity, after.signal_count) == (CaseStatus.RESOLVED, Severity.MAJOR, 2)


def test_a_year_old_signal_neither_reopens_last_weeks_resolution_nor_breaches() -> None:
    done = T0 - timedelta(days=7)
    year_old = T0 - timedelta(days=365)
    events = decide_signal(resolved(done), arriving(year_old, T0, 2), classified(Severity.MAJOR), SLA, T0, case_ids=CASE_IDS)
    assert [type(e) for e in events] == [SignalAttached]


def test_a_future_dated_signal_reopens_by_its_arrival_within_the_window() -> None:
    done = T0 - timedelta(days=1)
    ahead = T0 + timedelta(days=30)
    [event] = decide_signal(resolved(done), arriving(ahead, T0, 2), classified(Severity.MINOR), SLA, T0, case_ids=CASE_IDS)
    assert isinstance(event, CaseReopened)


def closed(at: datetime) -> CaseState:
    return replace(resolved(at), status=CaseStatus.CLOSED)


def test_a_signal_within_the_window_reopens_a_case_closed_by_a_satisfied_follow_up_too() -> None:
    """The window counts from the resolution; a satisfied follow-up does not shorten it."""
    done = T0 + timedelta(days=2)
    now = done + timedelta(days=5)
    [event] = decide_signal(closed(done), signal(2, at=now), classified(Severity.MINOR), SLA, now, case_ids=CASE_IDS)
    assert isinstance(event, CaseReopened)
    state = evolve(closed(done), event)
    assert (state.status, state.reopen_count, state.case_id) == (CaseStatus.OPEN, 1, closed(done).case_id)
    late = done + timedelta(days=15)
    [event] = decide_signal(closed(done), signal(3, at=late), classified(Severity.MINOR), SLA, late, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened) and event.ordinal == 2


def staked(n: int, at: datetime, amount: str, currency: str = "EUR") -> Signal:
    return replace(signal(n, at=at), amount_at_stake=Money(Decimal(amount), currency))


def test_a_reopening_signal_raises_the_cases_stake_to_the_larger_amount() -> None:
    done = T0 + timedelta(days=2)
    case = replay(decide_signal(None, staked(1, T0, "100"), classified(Severity.MAJOR), SLA, T0, case_ids=CASE_IDS))
    assert case is not None
    case = replace(case, status=CaseStatus.RESOLVED, resolved_at=done)
    now = done + timedelta(days=1)
    [event] = decide_signal(case, staked(2, now, "800"), classified(Severity.MINOR), SLA, now, case_ids=CASE_IDS)
    assert isinstance(event, CaseReopened)
    assert evolve(case, event).amount_at_stake == Money(Decimal("800"), "EUR")
    [event] = decide_signal(case, staked(3, now, "40"), classified(Severity.MINOR), SLA, now, case_ids=CASE_IDS)
    assert evolve(case, event).amount_at_stake == Money(Decimal("100"), "EUR")
    [event] = decide_signal(case, staked(4, now, "9000", "USD"), classified(Severity.MINOR), SLA, now, case_ids=CASE_IDS)
    assert evolve(case, event).amount_at_stake == Money(Decimal("100"), "EUR")  # the case keeps its currency
