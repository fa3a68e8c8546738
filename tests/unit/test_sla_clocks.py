"""The SLA engine wired: deadlines in business time, warning points, named clocks, and old events unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.business_time import add_business_time, business_time_between
from service.domain.calendars import BusinessCalendar, OpeningWindow, always_open
from service.domain.case import CaseState, clocks_of, decide_signal, evolve, replay
from service.domain.clock_calendars import ClockCalendars, ClockRule
from service.domain.events import (
    CASE_EVENT,
    CaseEscalated,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    ResolutionType,
    SlaBreached,
    SlaWarned,
)
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Signal, SignalKind, Tier
from service.domain.sla import SlaPolicy
from service.domain.timers import TimerKind, decide_timer, timers_for
from tests.cases import CASE_IDS

UTC_OFFICE = [OpeningWindow(9 * 60, 17 * 60 + 30)]
UK_OFFICE = BusinessCalendar.weekly(
    "uk-office", ZoneInfo("Europe/London"), {d: UTC_OFFICE for d in ("mon", "tue", "wed", "thu", "fri")}
)
BUSINESS_DAYS = BusinessCalendar.weekly(
    "uk-business-days",
    ZoneInfo("Europe/London"),
    {d: [OpeningWindow(0, 24 * 60)] for d in ("mon", "tue", "wed", "thu", "fri")},
)
TWENTY_FOUR_SEVEN = always_open()
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # London is on UTC in December
REGULATORY = "regulatory_final_response"


def calendars(*rules: ClockRule) -> ClockCalendars:
    return ClockCalendars(
        version="v7",
        calendars=(UK_OFFICE, BUSINESS_DAYS, TWENTY_FOUR_SEVEN),
        rules=rules,
        default=TWENTY_FOUR_SEVEN,
    )


OFFICE_HOURS = calendars(
    ClockRule(clock="resolution", calendar=TWENTY_FOUR_SEVEN, severities=frozenset({Severity.CRITICAL})),
    ClockRule(clock="resolution", calendar=UK_OFFICE),
    ClockRule(clock="first_response", calendar=UK_OFFICE, channels=frozenset({Channel.EMAIL})),
    ClockRule(
        clock=REGULATORY,
        calendar=BUSINESS_DAYS,
        categories=frozenset({Category.BILLING_ERROR}),
        duration=timedelta(days=15),
        pausable=False,
    ),
    ClockRule(
        clock=REGULATORY,
        calendar=TWENTY_FOUR_SEVEN,
        kinds=frozenset({SignalKind.COMPLAINT}),
        duration=timedelta(weeks=8),
        warning_fraction=0.5,
        pausable=False,
    ),
)
SLA = SlaPolicy(calendars=OFFICE_HOURS)


def signal(
    n: int = 1,
    at: datetime = FRIDAY_4PM,
    kind: SignalKind = SignalKind.COMPLAINT,
    channel: Channel = Channel.EMAIL,
    tier: Tier = Tier.STANDARD,
) -> Signal:
    return Signal(
        source="crm",
        id=f"s-{n}",
        kind=kind,
        occurred_at=at,
        received_at=at,
        customer_id="c-1",
        channel=channel,
        customer_tier=tier,
    )


def classified(severity: Severity, category: Category = Category.OTHER) -> Classification:
    return Classification(severity=severity, category=category, reasons=("test",), policy_version="t")


def opened(
    severity: Severity = Severity.MAJOR,
    sla: SlaPolicy = SLA,
    category: Category = Category.OTHER,
    **kw: object,
) -> tuple[CaseOpened, CaseState]:
    [event] = decide_signal(None, signal(**kw), classified(severity, category), sla, FRIDAY_4PM, case_ids=CASE_IDS)  # type: ignore[arg-type]
    assert isinstance(event, CaseOpened)
    state = evolve(None, event)
    return event, state


def clock(state: CaseState, name: str) -> object:
    return next(c for c in clocks_of(state) if c.name == name)


def test_a_resolution_deadline_counts_office_hours_only() -> None:
    event, _ = opened(Severity.MAJOR)  # 24 h: Fri 1.5 h, Mon 8.5 h, Tue 8.5 h, then 5.5 h on Wednesday
    assert event.resolution_deadline == datetime(2026, 12, 9, 14, 30, tzinfo=UTC)
    [_, resolution, *_] = event.clocks or ()
    assert (resolution.calendar, resolution.policy_version) == ("uk-office", "v7")
    assert resolution.warning_at == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)  # 18 h of open time: Tue 17:00


def test_the_warning_falls_at_the_fraction_of_business_time_not_wall_time() -> None:
    event, _ = opened(Severity.MAJOR)
    [first, resolution, *_] = event.clocks or ()
    for c in (first, resolution):
        assert c.warning_at is not None
        window = business_time_between(UK_OFFICE, c.started_at, c.deadline)
        assert business_time_between(UK_OFFICE, c.started_at, c.warning_at) == window * 0.75


def test_a_critical_case_stays_on_twenty_four_seven_and_a_rule_picks_by_channel() -> None:
    event, _ = opened(Severity.CRITICAL, channel=Channel.CHAT)
    [first, resolution, *_] = event.clocks or ()
    assert (resolution.calendar, resolution.deadline) == ("24x7", FRIDAY_4PM + timedelta(hours=4))
    assert (first.calendar, first.deadline) == ("24x7", FRIDAY_4PM + timedelta(hours=1))  # chat: no rule


def test_an_escalation_tightens_the_deadline_in_the_calendar_of_the_new_severity() -> None:
    _, state = opened(Severity.MAJOR)
    later = FRIDAY_4PM + timedelta(hours=2)
    events = decide_signal(state, signal(2, at=later), classified(Severity.CRITICAL), SLA, later, case_ids=CASE_IDS)
    escalated = next(e for e in events if isinstance(e, CaseEscalated))
    assert escalated.resolution_deadline == later + timedelta(hours=4)
    [moved] = escalated.clocks or ()
    assert (moved.calendar, moved.started_at, moved.window_from) == ("24x7", FRIDAY_4PM, later)
    assert moved.warning_at == FRIDAY_4PM + (moved.deadline - FRIDAY_4PM) * 0.75
    after = state
    for e in events:
        after = evolve(after, e)
    assert clock(after, "resolution") == moved


def test_an_escalation_that_would_extend_the_deadline_keeps_it() -> None:
    slow_for_moderate = SlaPolicy(
        calendars=calendars(
            ClockRule(clock="resolution", calendar=UK_OFFICE, severities=frozenset({Severity.MODERATE}))
        )
    )
    _, state = opened(Severity.MINOR, sla=slow_for_moderate)  # 72 h of 24x7: Monday 16:00
    events = decide_signal(state, signal(2), classified(Severity.MODERATE), slow_for_moderate, FRIDAY_4PM, case_ids=CASE_IDS)
    escalated = next(e for e in events if isinstance(e, CaseEscalated))
    assert escalated.resolution_deadline == state.resolution_deadline
    assert escalated.clocks == ()
    assert clocks_of(evolve(state, escalated)) == clocks_of(state)


def test_a_reopened_case_restarts_its_resolution_clock_in_business_time() -> None:
    event, state = opened(Severity.MAJOR)
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    state = evolve(state, resolved(state, monday))
    reopen_at = datetime(2026, 12, 11, 17, 0, tzinfo=UTC)  # Friday, half an hour before closing
    [reopened] = decide_signal(state, signal(2, at=reopen_at), classified(Severity.MAJOR), SLA, reopen_at, case_ids=CASE_IDS)
    assert isinstance(reopened, CaseReopened)
    assert reopened.resolution_deadline == add_business_time(UK_OFFICE, reopen_at, timedelta(hours=24))
    assert reopened.resolution_deadline == datetime(2026, 12, 16, 15, 30, tzinfo=UTC)  # 0.5 + 8.5 + 8.5 + 6.5
    state = evolve(state, reopened)
    names = {t.sla for t in timers_for(state, SLA)}
    assert names == {"resolution"}  # answered at resolution; the regulatory clock stopped for good


def resolved(state: CaseState, at: datetime) -> CaseResolved:
    return CaseResolved(
        case_id=state.case_id,
        at=at,
        actor="ana",
        resolution_type=ResolutionType.APOLOGY_ONLY,
        root_cause="other",
        prevention_action="call first",
    )


def test_a_named_clock_is_selected_by_category_before_kind() -> None:
    payment, _ = opened(category=Category.BILLING_ERROR)
    regulatory = next(c for c in payment.clocks or () if c.name == REGULATORY)
    # 15 business days from Friday 16:00: the rest of Friday, then 14 more weekdays and 16 hours
    assert regulatory.deadline == add_business_time(BUSINESS_DAYS, FRIDAY_4PM, timedelta(days=15))
    assert regulatory.deadline == datetime(2026, 12, 25, 16, 0, tzinfo=UTC)
    assert (regulatory.calendar, regulatory.pausable) == ("uk-business-days", False)
    other, _ = opened(category=Category.SERVICE_DELAY)
    complaint = next(c for c in other.clocks or () if c.name == REGULATORY)
    assert complaint.deadline == FRIDAY_4PM + timedelta(weeks=8)
    assert complaint.warning_at == FRIDAY_4PM + timedelta(weeks=4)  # the rule's own warning fraction


def test_a_named_clock_runs_only_on_cases_a_rule_selects() -> None:
    event, _ = opened(kind=SignalKind.NPS)
    assert [c.name for c in event.clocks or ()] == ["first_response", "resolution"]


def test_a_named_clock_warns_and_breaches_once_with_its_name_and_stops_on_resolution() -> None:
    _, state = opened()
    timers = [t for t in timers_for(state, SLA) if t.sla == REGULATORY]
    assert {t.kind for t in timers} == {TimerKind.WARNING, TimerKind.BREACH}
    for timer in sorted(timers, key=lambda t: t.due_at):
        [fired] = decide_timer(state, timer, timer.due_at, SLA)
        assert isinstance(fired, SlaWarned | SlaBreached)
        assert (fired.sla, fired.deadline) == (REGULATORY, timer.deadline)
        state = evolve(state, fired)
        assert decide_timer(state, timer, timer.due_at, SLA) == []
    _, fresh = opened()
    done = evolve(fresh, resolved(fresh, FRIDAY_4PM + timedelta(days=1)))
    stopped = clock(done, REGULATORY)
    assert stopped.stopped_at == FRIDAY_4PM + timedelta(days=1)  # type: ignore[attr-defined]


def test_without_a_policy_file_clocks_are_twenty_four_seven_as_before() -> None:
    event, state = opened(Severity.MAJOR, sla=SlaPolicy())
    assert event.resolution_deadline == FRIDAY_4PM + timedelta(hours=24)
    assert event.first_response_deadline == FRIDAY_4PM + timedelta(hours=4)
    assert {(c.name, c.calendar, c.policy_version) for c in event.clocks or ()} == {
        ("first_response", "24x7", None),
        ("resolution", "24x7", None),
    }
    assert [t.due_at for t in timers_for(state, SlaPolicy())] == [
        FRIDAY_4PM + timedelta(hours=3),
        FRIDAY_4PM + timedelta(hours=4),
        FRIDAY_4PM + timedelta(hours=18),
        FRIDAY_4PM + timedelta(hours=24),
    ]


def test_events_stored_before_clocks_replay_to_the_same_timers() -> None:
    event, _ = opened(Severity.MAJOR, sla=SlaPolicy())
    stored = json.loads(CASE_EVENT.dump_json(event))
    del stored["clocks"]
    old = CASE_EVENT.validate_json(json.dumps(stored))
    assert isinstance(old, CaseOpened) and old.clocks is None
    legacy = replay([old])
    assert legacy is not None
    assert timers_for(legacy, SlaPolicy()) == timers_for(evolve(None, event), SlaPolicy())
    # the 24x7 clocks a case without a policy file has today: the same, as they counted then
    assert clocks_of(legacy) == clocks_of(evolve(None, event))
    assert [(c.calendar, c.policy_version) for c in clocks_of(legacy)] == [("24x7", None), ("24x7", None)]


def test_a_snapshot_stored_before_clocks_reads_its_clocks_from_its_deadlines() -> None:
    _, state = opened(Severity.MAJOR, sla=SlaPolicy())
    from service.domain.case import CASE_STATE

    stored = json.loads(CASE_STATE.dump_json(state))
    for key in ("clocks", "kind", "category"):
        del stored[key]
    old = CASE_STATE.validate_json(json.dumps(stored))
    assert old.clocks == ()
    assert timers_for(old, SlaPolicy()) == timers_for(state, SlaPolicy())
