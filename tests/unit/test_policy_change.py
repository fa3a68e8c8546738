"""A new SLA policy version corrects an open case's clocks: earlier, later, unchanged, added, stopped, and never an
alert for a deadline that passed before the correction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.domain.calendars import BusinessCalendar, OpeningWindow, always_open
from service.domain.case import CaseState, CaseStatus, clocks_of, decide_signal, evolve, replay, sla_key
from service.domain.clock_calendars import ClockCalendars, ClockRule
from service.domain.events import CASE_EVENT, CaseEvent, CaseOpened, DeadlinesCorrected
from service.domain.intake import changed_timers
from service.domain.policy_change import PolicyChange, corrections
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Signal, SignalKind
from service.domain.sla import PauseReason, PauseSpan, SlaPolicy
from service.domain.timers import TimerKind, decide_timer, timers_for
from tests.cases import CASE_IDS

OFFICE = BusinessCalendar.weekly(
    "office",
    ZoneInfo("Europe/London"),
    {d: [OpeningWindow(9 * 60, 17 * 60)] for d in ("mon", "tue", "wed", "thu", "fri")},
)
ALWAYS = always_open()
MONDAY_9AM = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # London is on UTC in December
REGULATORY = "regulatory_final_response"
BASE = SlaPolicy(resolution={s: timedelta(hours=16) for s in Severity})


def policy(version: str, *rules: ClockRule) -> SlaPolicy:
    calendars = ClockCalendars(version=version, calendars=(OFFICE, ALWAYS), rules=rules, default=ALWAYS)
    return BASE.model_copy(update={"calendars": calendars})


V1 = policy("v1")  # every clock 24x7
V2_OFFICE = policy("v2", ClockRule(clock="resolution", calendar=OFFICE))
REGULATED = ClockRule(
    clock=REGULATORY, calendar=ALWAYS, kinds=frozenset({SignalKind.COMPLAINT}), duration=timedelta(days=2)
)
V3_NAMED = policy("v3", REGULATED)


def opening(sla: SlaPolicy, at: datetime = MONDAY_9AM) -> CaseOpened:
    signal = Signal(
        source="crm",
        id="s-1",
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at,
        customer_id="c-1",
        channel=Channel.EMAIL,
    )
    classification = Classification(
        severity=Severity.MINOR, category=Category.MISSED_APPOINTMENT, reasons=("t",), policy_version="t"
    )
    [event] = decide_signal(None, signal, classification, sla, at, case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    return event


def opened(sla: SlaPolicy) -> CaseState:
    return evolve(None, opening(sla))


def corrected(state: CaseState, sla: SlaPolicy, now: datetime) -> tuple[DeadlinesCorrected, CaseState]:
    event = corrections(state, sla, now, "v1")
    assert event is not None
    assert CASE_EVENT.validate_json(CASE_EVENT.dump_json(event)) == event  # stored and read back unchanged
    return event, evolve(state, event)


def resolution(state: CaseState) -> datetime:
    return next(c.deadline for c in clocks_of(state) if c.name == "resolution")


def test_the_same_policy_under_a_new_version_changes_nothing() -> None:
    state = opened(V1)
    assert corrections(state, policy("v1-again"), MONDAY_9AM, "v1") is None
    assert corrections(state, V1, MONDAY_9AM + timedelta(days=30), "v1") is None


def test_business_hours_move_a_deadline_later_and_its_timers_with_it() -> None:
    state = opened(V1)
    assert resolution(state) == MONDAY_9AM + timedelta(hours=16)  # Tuesday 01:00, 24x7
    event, after = corrected(state, V2_OFFICE, MONDAY_9AM + timedelta(hours=1))
    [clock] = event.corrections
    assert clock.name == "resolution" and clock.before is not None and clock.after is not None
    assert clock.before.deadline == MONDAY_9AM + timedelta(hours=16)
    assert clock.after.deadline == MONDAY_9AM + timedelta(days=1, hours=8)  # two office days: Tuesday 17:00
    assert (clock.after.calendar, clock.after.policy_version) == ("office", "v2")
    assert (event.from_version, event.to_version) == ("v1", "v2")
    assert resolution(after) == after.resolution_deadline == clock.after.deadline
    moved = changed_timers({state.case_id: state}, {after.case_id: after}, V2_OFFICE)[state.case_id]
    breach = next(t for t in moved if t.sla == "resolution" and t.kind is TimerKind.BREACH)
    assert breach.due_at == clock.after.deadline
    assert after.sla_fired == ()  # nothing had passed


def test_going_back_to_24x7_moves_the_deadline_earlier() -> None:
    state = opened(V2_OFFICE)
    event, after = corrected(state, V1, MONDAY_9AM + timedelta(hours=1))
    [clock] = event.corrections
    assert clock.before is not None and clock.after is not None
    assert clock.after.deadline < clock.before.deadline
    assert resolution(after) == MONDAY_9AM + timedelta(hours=16)


def test_a_named_clock_the_policy_adds_starts_at_the_opening_and_one_it_drops_stops() -> None:
    state = opened(V1)
    now = MONDAY_9AM + timedelta(hours=3)
    event, after = corrected(state, V3_NAMED, now)
    [added] = event.corrections
    assert added.name == REGULATORY and added.before is None and added.after is not None
    assert (added.after.started_at, added.after.deadline) == (MONDAY_9AM, MONDAY_9AM + timedelta(days=2))
    assert {t.sla for t in timers_for(after, V3_NAMED)} == {"first_response", "resolution", REGULATORY}

    dropped_event, dropped = corrected(after, V1, now + timedelta(hours=1))
    [stop] = dropped_event.corrections
    assert stop.name == REGULATORY and stop.after is None
    [regulatory] = [c for c in clocks_of(dropped) if c.name == REGULATORY]
    assert regulatory.stopped_at == now + timedelta(hours=1)
    assert REGULATORY not in {t.sla for t in timers_for(dropped, V1)}
    assert corrections(dropped, V1, now + timedelta(hours=2), "v1") is None  # a stopped clock is not re-added


def test_a_deadline_corrected_into_the_past_counts_as_fired_and_its_timers_decide_nothing() -> None:
    state = opened(V2_OFFICE)  # resolution due Tuesday 17:00 in office hours
    now = MONDAY_9AM + timedelta(hours=20)  # Tuesday 05:00: the 24x7 deadline (Tuesday 01:00) has passed
    event, after = corrected(state, V1, now)
    [clock] = event.corrections
    assert clock.after is not None and clock.after.deadline < now
    assert sla_key("resolution", "warning", clock.after.deadline) in after.sla_fired
    assert sla_key("resolution", "breach", clock.after.deadline) in after.sla_fired
    for timer in [t for t in timers_for(after, V1) if t.sla == "resolution"]:
        assert timer.due_at <= now
        assert decide_timer(after, timer, now, V1) == []


def test_a_passed_warning_point_counts_as_fired_but_the_breach_still_comes() -> None:
    state = opened(V2_OFFICE)
    now = MONDAY_9AM + timedelta(hours=14)  # the 24x7 warning (12 h in) has passed, the deadline (16 h) not
    _, after = corrected(state, V1, now)
    deadline = MONDAY_9AM + timedelta(hours=16)
    assert sla_key("resolution", "warning", deadline) in after.sla_fired
    assert sla_key("resolution", "breach", deadline) not in after.sla_fired
    [breach] = [t for t in timers_for(after, V1) if (t.sla, t.kind) == ("resolution", TimerKind.BREACH)]
    assert len(decide_timer(after, breach, deadline, V1)) == 1


def test_resolved_cases_and_stopped_clocks_are_not_corrected() -> None:
    state = opened(V1)
    assert corrections(replace(state, status=CaseStatus.RESOLVED), V2_OFFICE, MONDAY_9AM, "v1") is None
    acknowledged = replace(state, acknowledged_at=MONDAY_9AM + timedelta(minutes=5))
    event = corrections(
        acknowledged, policy("v2", ClockRule(clock="first_response", calendar=OFFICE)), MONDAY_9AM
    )
    assert event is None


def test_a_pausable_clock_keeps_the_open_time_its_ended_pauses_gave_back() -> None:
    pause = PauseSpan(
        reason=PauseReason.AWAITING_CUSTOMER,
        started_at=MONDAY_9AM + timedelta(hours=1),
        ended_at=MONDAY_9AM + timedelta(hours=3),
    )
    paused = replace(opened(V1), pauses=(pause,))  # as if its resume had not moved the clocks yet
    event = corrections(paused, V2_OFFICE, MONDAY_9AM + timedelta(hours=4))
    assert event is not None
    after = {c.name: c.after for c in event.corrections}
    assert after["resolution"] is not None and after["first_response"] is not None
    # 16 office hours from Monday 09:00 end Tuesday 17:00; the pause's 2 open hours: Wednesday 11:00
    assert after["resolution"].deadline == MONDAY_9AM + timedelta(days=2, hours=2)
    assert after["first_response"].deadline == MONDAY_9AM + timedelta(
        hours=4 + 2
    )  # 24x7 still, 2 h given back


def test_replaying_the_stream_with_its_correction_equals_the_live_state() -> None:
    first = opening(V1)
    live = evolve(None, first)
    correction = corrections(live, V3_NAMED, MONDAY_9AM + timedelta(hours=20), "v1")
    assert correction is not None
    live = evolve(live, correction)
    again = corrections(live, V2_OFFICE, MONDAY_9AM + timedelta(hours=21), "v3")
    assert again is not None
    assert replay([first, correction, again]) == evolve(live, again)


def test_the_change_counts_each_clock_earlier_later_added_and_the_largest_shift() -> None:
    change = PolicyChange("v1", "v2")
    later = corrections(opened(V1), V2_OFFICE, MONDAY_9AM)
    earlier = corrections(opened(V2_OFFICE), V1, MONDAY_9AM)
    added = corrections(opened(V1), V3_NAMED, MONDAY_9AM)
    for event in (later, earlier, added, None):
        change.add(event)
    change.fail("broken-case")
    assert (change.looked_at, change.changed, change.failed) == (5, 3, ["broken-case"])
    assert (change.clocks["resolution"].earlier, change.clocks["resolution"].later) == (1, 1)
    assert change.clocks["resolution"].largest == timedelta(hours=16)  # Tuesday 01:00 <-> Tuesday 17:00
    assert change.clocks[REGULATORY].added == 1


def test_an_escalated_clock_is_rerun_from_where_the_escalation_counted_it_and_keeps_its_start() -> None:
    state = opened(V1)
    later = MONDAY_9AM + timedelta(hours=2)
    signal = Signal(
        source="crm",
        id="s-2",
        kind=SignalKind.COMPLAINT,
        occurred_at=later,
        received_at=later,
        customer_id="c-1",
    )
    critical = Classification(
        severity=Severity.CRITICAL, category=Category.MISSED_APPOINTMENT, reasons=("t",), policy_version="t"
    )
    four_hours = BASE.model_copy(
        update={"resolution": {**BASE.resolution, Severity.CRITICAL: timedelta(hours=4)}}
    )
    for event in decide_signal(state, signal, critical, four_hours, later, case_ids=CASE_IDS):
        state = evolve(state, event)
    assert resolution(state) == later + timedelta(hours=4)
    office = policy("v2", ClockRule(clock="resolution", calendar=OFFICE)).model_copy(
        update={"resolution": four_hours.resolution}
    )
    _, after = corrected(state, office, later)
    [clock] = [c for c in clocks_of(after) if c.name == "resolution"]
    assert (clock.started_at, clock.window_from) == (MONDAY_9AM, later)
    assert clock.deadline == later + timedelta(hours=4)  # Monday 11:00 + 4 office hours: 15:00 still
    assert corrections(after, office, later, "v2") is None


def test_a_case_stored_before_clocks_were_recorded_gets_its_clocks_recorded_by_a_correction() -> None:
    state = replace(opened(V1), clocks=())  # a snapshot of an older release: the deadlines are its fields
    event, after = corrected(state, V2_OFFICE, MONDAY_9AM)
    assert [c.name for c in event.corrections] == ["resolution"]
    [clock] = [c for c in clocks_of(after) if c.name == "resolution"]
    assert (clock.calendar, clock.policy_version) == ("office", "v2")
    assert after.resolution_deadline == clock.deadline == MONDAY_9AM + timedelta(days=1, hours=8)


POLICIES = (
    V1,
    V2_OFFICE,
    V3_NAMED,
    policy("v4", ClockRule(clock="first_response", calendar=OFFICE), REGULATED),
)


@given(
    st.sampled_from(POLICIES),
    st.sampled_from(POLICIES),
    st.sampled_from(POLICIES),
    st.timedeltas(timedelta(0), timedelta(days=9)),
    st.timedeltas(timedelta(0), timedelta(days=9)),
    st.timedeltas(timedelta(0), timedelta(days=9)),
)
def test_corrections_replay_to_the_live_state_and_the_same_policy_twice_changes_nothing(
    first: SlaPolicy, second: SlaPolicy, third: SlaPolicy, opens: timedelta, gap: timedelta, gap2: timedelta
) -> None:
    start = opening(first, MONDAY_9AM + opens)
    events: list[CaseEvent] = [start]
    live = evolve(None, start)
    now = start.opened_at
    for sla, wait in ((second, gap), (third, gap2)):
        now += wait
        correction = corrections(live, sla, now, "before")
        if correction is not None:
            events.append(correction)
            live = evolve(live, correction)
        assert corrections(live, sla, now + timedelta(hours=1), "again") is None
        moved = set() if correction is None else {c.name for c in correction.corrections}
        passed = [t for t in timers_for(live, sla) if t.sla in moved and t.due_at <= now]
        assert [decide_timer(live, t, now, sla) for t in passed] == [[] for _ in passed]  # no alert for those
    assert replay(events) == live
