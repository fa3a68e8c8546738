"""Pauses with typed reasons and budgets: paused open time is given back to the clocks that honour pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.business_time import ZERO, add_business_time
from service.domain.calendars import BusinessCalendar, OpeningWindow, always_open
from service.domain.case import CaseState, clocks_of, decide_signal, evolve, paused
from service.domain.clock_calendars import ClockCalendars, ClockRule
from service.domain.clock_reports import ClockState, clock_reports, stopped_clocks
from service.domain.errors import InvalidValue, WrongState
from service.domain.events import (
    CaseEvent,
    CaseOpened,
    CaseResolved,
    CaseResumed,
    ResolutionType,
    ResumeCause,
    SignalAttached,
    SlaBreached,
    SlaWarned,
)
from service.domain.pauses import budget_left, decide_pause, decide_resume, paused_time
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Signal, SignalKind, Tier
from service.domain.sla import PauseReason, PauseSpan, SlaClock, SlaPolicy, paused_business_time
from service.domain.timers import TimerKind, decide_timer, timers_for
from service.domain.workflow import Actor, decide_acknowledge, decide_resolve
from tests.cases import CASE_IDS

THURSDAY_10TH = date(2026, 12, 10)  # a holiday in this office
OFFICE = BusinessCalendar.weekly(
    "office",
    ZoneInfo("Europe/London"),
    {d: [OpeningWindow(9 * 60, 17 * 60 + 30)] for d in ("mon", "tue", "wed", "thu", "fri")},
    frozenset({THURSDAY_10TH}),
)
TWENTY_FOUR_SEVEN = always_open()
REGULATORY = "regulatory_final_response"
RULES = ClockCalendars(
    version="v1",
    calendars=(OFFICE, TWENTY_FOUR_SEVEN),
    rules=(
        ClockRule(clock="resolution", calendar=OFFICE),
        ClockRule(clock="first_response", calendar=OFFICE),
        ClockRule(clock=REGULATORY, calendar=TWENTY_FOUR_SEVEN, duration=timedelta(weeks=8), pausable=False),
    ),
    pause_budgets={PauseReason.AWAITING_PARTS: timedelta(days=3)},
)
SLA = SlaPolicy(calendars=RULES)
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # London is on UTC in December
MONDAY_10AM = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
WEDNESDAY_10AM = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
MIA = Actor("mia", "manager")


def signal(n: int, at: datetime) -> Signal:
    return Signal(
        source="crm",
        id=f"s-{n}",
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at,
        customer_id="c-1",
        channel=Channel.EMAIL,
        customer_tier=Tier.STANDARD,
    )


def classified(severity: Severity = Severity.MAJOR) -> Classification:
    return Classification(severity=severity, category=Category.OTHER, reasons=("test",), policy_version="t")


def then(state: CaseState | None, events: list[CaseEvent]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


def opened() -> CaseState:
    [event] = decide_signal(None, signal(1, FRIDAY_4PM), classified(), SLA, FRIDAY_4PM, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    return then(None, [event])


def clock(state: CaseState, name: str) -> SlaClock:
    return next(c for c in clocks_of(state) if c.name == name)


def paused_at(
    state: CaseState,
    at: datetime,
    reason: PauseReason = PauseReason.AWAITING_PARTS,
    until: datetime | None = None,
) -> CaseState:
    return then(state, decide_pause(state, MIA, reason, until, SLA, at))


def test_a_resumed_clock_gets_back_the_open_time_the_pause_took_across_a_weekend_and_a_holiday() -> None:
    case = opened()  # 24 h of office time from Friday 16:00: due Wednesday 14:30
    assert clock(case, "resolution").deadline == datetime(2026, 12, 9, 14, 30, tzinfo=UTC)
    case = paused_at(case, MONDAY_10AM)
    [resumed] = decide_resume(case, MIA, SLA, WEDNESDAY_10AM)
    case = then(case, [resumed])
    # The pause took Mon 7.5 h + Tue 8.5 h + Wed 1 h = 17 h: from Wed 14:30, 3 h on Wednesday, none on the
    # holiday, 8.5 h on Friday, then 5.5 h on Monday the 14th.
    resolution = clock(case, "resolution")
    assert resolution.deadline == datetime(2026, 12, 14, 14, 30, tzinfo=UTC)
    assert case.resolution_deadline == resolution.deadline
    assert isinstance(resumed, CaseResumed) and resumed.cause is ResumeCause.STAFF
    # the rule H5 relies on: the window plus the paused open time of the pauses before the deadline
    assert resolution.window is not None
    paused_open = paused_business_time(OFFICE, case.pauses, resolution.counted_from, resolution.deadline)
    assert paused_open == timedelta(hours=17)
    assert (
        add_business_time(OFFICE, resolution.counted_from, resolution.window + paused_open)
        == resolution.deadline
    )


def test_the_warning_point_moves_with_the_deadline_and_a_clock_that_ignores_pauses_does_not_move() -> None:
    case = opened()
    before_warning = clock(case, "resolution").warning_at
    regulatory = clock(case, REGULATORY)
    case = paused_at(case, MONDAY_10AM)
    case = then(case, decide_resume(case, MIA, SLA, WEDNESDAY_10AM))
    assert before_warning is not None
    assert clock(case, "resolution").warning_at == add_business_time(
        OFFICE, before_warning, timedelta(hours=17)
    )
    assert clock(case, REGULATORY) == regulatory


def test_while_paused_only_the_clocks_that_ignore_pauses_have_timers_and_the_resume_timer_is_set() -> None:
    case = paused_at(opened(), MONDAY_10AM)
    timers = timers_for(case, SLA)
    assert {t.sla for t in timers if t.kind in (TimerKind.WARNING, TimerKind.BREACH)} == {REGULATORY}
    [resume] = [t for t in timers if t.kind is TimerKind.RESUME]
    assert (resume.sla, resume.due_at) == (PauseReason.AWAITING_PARTS, MONDAY_10AM + timedelta(days=3))


def test_a_pause_beyond_its_budget_resumes_by_itself_when_the_budget_runs_out() -> None:
    case = paused_at(opened(), MONDAY_10AM, until=MONDAY_10AM + timedelta(days=30))
    pause = paused(case)
    assert pause is not None and pause.resumes_at == MONDAY_10AM + timedelta(days=3)  # clamped, not refused
    [resume] = [t for t in timers_for(case, SLA) if t.kind is TimerKind.RESUME]
    [event] = decide_timer(case, resume, resume.due_at, SLA)
    assert isinstance(event, CaseResumed)
    assert (event.cause, event.actor) == (ResumeCause.BUDGET_SPENT, None)
    after = then(case, [event])
    assert paused(after) is None and budget_left(after, PauseReason.AWAITING_PARTS, SLA) == timedelta(0)
    assert not [t for t in timers_for(after, SLA) if t.kind is TimerKind.RESUME]
    with pytest.raises(WrongState, match="whole awaiting_parts pause budget"):
        decide_pause(after, MIA, PauseReason.AWAITING_PARTS, None, SLA, resume.due_at)
    decide_pause(after, MIA, PauseReason.AWAITING_THIRD_PARTY, None, SLA, resume.due_at)  # its own budget


def test_a_pause_until_a_time_within_the_budget_resumes_then_and_says_so() -> None:
    case = paused_at(opened(), MONDAY_10AM, until=WEDNESDAY_10AM)
    [resume] = [t for t in timers_for(case, SLA) if t.kind is TimerKind.RESUME]
    assert resume.due_at == WEDNESDAY_10AM
    [event] = decide_timer(case, resume, WEDNESDAY_10AM, SLA)
    assert isinstance(event, CaseResumed) and event.cause is ResumeCause.UNTIL_REACHED


def test_the_budget_is_cumulative_per_case_and_reason() -> None:
    case = paused_at(opened(), MONDAY_10AM)
    case = then(case, decide_resume(case, MIA, SLA, MONDAY_10AM + timedelta(days=1)))
    case = paused_at(case, WEDNESDAY_10AM)
    pause = paused(case)
    assert pause is not None and pause.resumes_at == WEDNESDAY_10AM + timedelta(days=2)
    assert paused_time(case, WEDNESDAY_10AM + timedelta(hours=5))[PauseReason.AWAITING_PARTS] == timedelta(
        days=1, hours=5
    )


def test_a_resume_timer_of_an_ended_pause_decides_nothing() -> None:
    case = paused_at(opened(), MONDAY_10AM)
    [resume] = [t for t in timers_for(case, SLA) if t.kind is TimerKind.RESUME]
    case = then(case, decide_resume(case, MIA, SLA, WEDNESDAY_10AM))
    assert decide_timer(case, resume, resume.due_at, SLA) == []


def test_the_customers_signal_ends_a_pause_awaiting_them_before_it_attaches() -> None:
    case = paused_at(opened(), MONDAY_10AM, PauseReason.AWAITING_CUSTOMER)
    resumed, attached = decide_signal(case, signal(2, WEDNESDAY_10AM), classified(), SLA, WEDNESDAY_10AM, case_ids=CASE_IDS)
    assert isinstance(resumed, CaseResumed) and isinstance(attached, SignalAttached)
    assert (resumed.cause, resumed.actor) == (ResumeCause.CUSTOMER_SIGNAL, None)
    after = then(case, [resumed, attached])
    assert paused(after) is None and after.version == case.version + 2


def test_the_customers_signal_does_not_end_a_pause_awaiting_parts() -> None:
    case = paused_at(opened(), MONDAY_10AM, PauseReason.AWAITING_PARTS)
    [attached] = decide_signal(case, signal(2, WEDNESDAY_10AM), classified(), SLA, WEDNESDAY_10AM, case_ids=CASE_IDS)
    assert isinstance(attached, SignalAttached)
    assert paused(then(case, [attached])) is not None


def test_a_breach_that_fired_before_the_pause_stays_and_keeps_its_timer() -> None:
    case = opened()
    deadline = clock(case, "resolution").deadline
    breached = SlaBreached(
        case_id=case.case_id,
        at=deadline,
        customer_id="c-1",
        severity=Severity.MAJOR,
        sla="resolution",
        deadline=deadline,
    )
    case = then(case, [breached])
    later = deadline + timedelta(hours=1)
    case = paused_at(case, later)
    assert "resolution" in {t.sla for t in timers_for(case, SLA) if t.kind is TimerKind.BREACH}
    [resumed] = decide_resume(case, MIA, SLA, later + timedelta(days=1))
    assert isinstance(resumed, CaseResumed)
    assert "resolution" not in {c.name for c in resumed.clocks}
    assert clock(then(case, [resumed]), "resolution").deadline == deadline


def test_a_warning_that_fired_before_the_pause_does_not_fire_again_for_the_moved_deadline() -> None:
    case = opened()
    resolution = clock(case, "resolution")
    assert resolution.warning_at is not None
    warned = SlaWarned(
        case_id=case.case_id,
        at=resolution.warning_at,
        customer_id="c-1",
        severity=Severity.MAJOR,
        sla="resolution",
        deadline=resolution.deadline,
    )
    case = then(case, [warned])
    pause_start = resolution.warning_at + timedelta(minutes=10)
    case = paused_at(case, pause_start)
    case = then(case, decide_resume(case, MIA, SLA, pause_start + timedelta(days=1)))
    moved = clock(case, "resolution")
    assert moved.deadline > resolution.deadline and moved.warning_at == resolution.warning_at
    [warning] = [t for t in timers_for(case, SLA) if t.kind is TimerKind.WARNING and t.sla == "resolution"]
    assert decide_timer(case, warning, warning.due_at, SLA) == []


def test_resolving_a_paused_case_resumes_it_first_so_its_clocks_stop_with_their_time_given_back() -> None:
    case = paused_at(opened(), MONDAY_10AM)
    events = decide_resolve(
        case,
        ResolutionType.APOLOGY_ONLY,
        "x",
        "y",
        MIA,
        {"x"},
        datetime(2026, 12, 14, 10, tzinfo=UTC),
        sla=SLA,
    )
    assert [type(e) for e in events] == [CaseResumed, CaseResolved]
    resolved = then(case, events)
    assert paused(resolved) is None
    resolution = clock(resolved, "resolution")
    assert resolution.stopped_at is not None and resolution.stopped_at <= resolution.deadline  # met
    with pytest.raises(WrongState, match="resume it"):
        decide_resolve(case, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, MONDAY_10AM)


def test_refusals_name_the_reason() -> None:
    case = opened()
    with pytest.raises(WrongState, match="not paused"):
        decide_resume(case, MIA, SLA, MONDAY_10AM)
    with pytest.raises(InvalidValue, match="until must be in the future") as refused:
        decide_pause(case, MIA, PauseReason.AWAITING_PARTS, MONDAY_10AM, SLA, MONDAY_10AM)
    assert refused.value.field == "until"
    case = paused_at(case, MONDAY_10AM)
    with pytest.raises(WrongState, match="already paused"):
        decide_pause(case, MIA, PauseReason.AWAITING_CUSTOMER, None, SLA, WEDNESDAY_10AM)
    resolved = then(
        case, decide_resolve(case, ResolutionType.APOLOGY_ONLY, "x", "y", MIA, {"x"}, WEDNESDAY_10AM, sla=SLA)
    )
    with pytest.raises(WrongState, match="not open"):
        decide_pause(resolved, MIA, PauseReason.AWAITING_PARTS, None, SLA, WEDNESDAY_10AM)


def test_default_budgets_without_a_policy_file() -> None:
    sla = SlaPolicy()
    assert sla.pause_budget(PauseReason.AWAITING_CUSTOMER) == timedelta(days=5)
    assert sla.pause_budget(PauseReason.AWAITING_THIRD_PARTY) == timedelta(days=10)
    assert SLA.pause_budget(PauseReason.AWAITING_PARTS) == timedelta(days=3)


def test_paused_business_time_counts_only_ended_pauses_within_the_window() -> None:
    spans = (
        PauseSpan(reason=PauseReason.AWAITING_PARTS, started_at=MONDAY_10AM, ended_at=WEDNESDAY_10AM),
        PauseSpan(reason=PauseReason.AWAITING_CUSTOMER, started_at=WEDNESDAY_10AM + timedelta(hours=2)),
    )
    assert paused_business_time(OFFICE, spans, MONDAY_10AM, WEDNESDAY_10AM) == timedelta(hours=17)
    tuesday = datetime(2026, 12, 8, 12, tzinfo=UTC)
    assert paused_business_time(OFFICE, spans, tuesday, tuesday + timedelta(days=7)) == timedelta(hours=6.5)


def test_the_clock_report_shows_held_clocks_paused_with_the_open_time_left_when_the_pause_began() -> None:
    case = paused_at(opened(), MONDAY_10AM)
    reports = {r.clock.name: r for r in clock_reports(case, SLA, datetime(2026, 12, 16, tzinfo=UTC))}
    assert reports["resolution"].state is ClockState.PAUSED  # past its old deadline, yet not breached
    assert reports["resolution"].business_left == timedelta(hours=24 - 1.5 - 1)  # Fri 1.5 h, Mon 1 h used
    assert reports[REGULATORY].state is ClockState.RUNNING
    case = then(case, decide_resume(case, MIA, SLA, WEDNESDAY_10AM))
    resolution = next(r for r in clock_reports(case, SLA, WEDNESDAY_10AM) if r.clock.name == "resolution")
    assert resolution.state is ClockState.RUNNING
    assert resolution.business_elapsed == timedelta(hours=2.5)  # the paused 17 h do not count
    assert resolution.business_left == timedelta(hours=21.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60 * 30), st.integers(1, 60 * 40)),  # minutes until the pause, its length
        min_size=1,
        max_size=4,
    )
)
def test_every_deadline_is_its_window_plus_the_paused_open_time_before_it(
    pauses: list[tuple[int, int]],
) -> None:
    """The rule policy corrections rely on holds after any sequence of pauses and resumes."""
    case, at = opened(), FRIDAY_4PM
    for gap, length in pauses:
        at += timedelta(minutes=gap)
        reason = PauseReason.AWAITING_THIRD_PARTY  # a 10-day budget: never spent here
        case = then(case, decide_pause(case, MIA, reason, None, SLA, at))
        at += timedelta(minutes=length)
        case = then(case, decide_resume(case, MIA, SLA, at))
    for c in clocks_of(case):
        calendar = SLA.calendar(c.calendar)
        assert c.window is not None
        given_back = (
            paused_business_time(calendar, case.pauses, c.counted_from, c.deadline) if c.pausable else ZERO
        )
        assert add_business_time(calendar, c.counted_from, c.window + given_back) == c.deadline, c.name


def test_a_first_response_during_a_pause_is_judged_with_the_paused_open_time_given_back() -> None:
    case = opened()  # first response: 4 h of office time from Friday 16:00, due Monday 11:30
    assert clock(case, "first_response").deadline == datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    case = paused_at(case, MONDAY_10AM, PauseReason.AWAITING_CUSTOMER)
    tuesday_noon = datetime(2026, 12, 8, 12, tzinfo=UTC)  # after the old deadline, within the paused time
    case = then(case, decide_acknowledge(case, MIA, tuesday_noon))
    first = next(r for r in clock_reports(case, SLA, tuesday_noon) if r.clock.name == "first_response")
    assert first.state is ClockState.MET
    assert first.business_elapsed == timedelta(hours=2.5)  # Fri 1.5 h, Mon 1 h before the pause


def test_the_measured_time_to_first_response_leaves_the_paused_time_out() -> None:
    case = paused_at(opened(), MONDAY_10AM, PauseReason.AWAITING_CUSTOMER)
    tuesday_noon = datetime(2026, 12, 8, 12, tzinfo=UTC)
    acknowledged = then(case, decide_acknowledge(case, MIA, tuesday_noon))
    [first] = stopped_clocks(case, acknowledged, SLA)
    assert (first.name, first.met) == ("first_response", True)
    assert (first.wall, first.business) == (tuesday_noon - FRIDAY_4PM, timedelta(hours=2.5))
