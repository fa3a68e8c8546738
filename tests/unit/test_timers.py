"""SLA timers: where warnings and breaches fall, and that each fires once per deadline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.case import CaseState, CaseStatus, evolve, replay
from service.domain.events import SlaBreached, SlaKind, SlaWarned
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.timers import TimerKind, decide_timer, sla_event_id, timers_for
from tests.cases import CASE_IDS

T0 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # a DST night in Europe: UTC instants only
SLA = SlaPolicy()


def opened(severity: Severity = Severity.MAJOR, channel: Channel = Channel.CHAT) -> CaseState:
    from service.domain.case import decide_signal

    signal = Signal(
        source="s",
        id="1",
        kind=SignalKind.NPS,
        occurred_at=T0,
        received_at=T0,
        customer_id="c",
        channel=channel,
    )
    classification = Classification(
        severity=severity, category=Category.OTHER, reasons=(), policy_version="t"
    )
    state = replay(decide_signal(None, signal, classification, SLA, T0, case_ids=CASE_IDS))
    assert state is not None
    return state


def test_an_open_case_waits_for_a_warning_and_a_breach_of_both_clocks() -> None:
    timers = {(t.sla, t.kind): t.due_at for t in timers_for(opened(), SLA)}
    assert timers == {
        (SlaKind.RESOLUTION, TimerKind.WARNING): T0 + timedelta(hours=18),
        (SlaKind.RESOLUTION, TimerKind.BREACH): T0 + timedelta(hours=24),
        (SlaKind.FIRST_RESPONSE, TimerKind.WARNING): T0 + timedelta(minutes=45),
        (SlaKind.FIRST_RESPONSE, TimerKind.BREACH): T0 + timedelta(hours=1),
    }


def test_an_acknowledged_case_has_no_first_response_timers_and_a_resolved_one_none() -> None:
    acknowledged = replace(opened(), acknowledged_at=T0 + timedelta(minutes=5))
    assert {t.sla for t in timers_for(acknowledged, SLA)} == {SlaKind.RESOLUTION}
    assert timers_for(replace(opened(), status=CaseStatus.RESOLVED), SLA) == []


def test_a_due_timer_fires_once_for_its_deadline() -> None:
    state = opened()
    breach = next(
        t for t in timers_for(state, SLA) if t.kind is TimerKind.BREACH and t.sla is SlaKind.RESOLUTION
    )
    [event] = decide_timer(state, breach, breach.due_at, SLA)
    assert isinstance(event, SlaBreached)
    assert (event.sla, event.deadline, event.severity, event.customer_id) == (
        SlaKind.RESOLUTION,
        breach.deadline,
        Severity.MAJOR,
        "c",
    )
    assert decide_timer(evolve(state, event), breach, breach.due_at + timedelta(seconds=1), SLA) == []


def test_a_timer_for_a_deadline_that_moved_or_a_stopped_clock_decides_nothing() -> None:
    state = opened()
    warning = next(
        t for t in timers_for(state, SLA) if t.kind is TimerKind.WARNING and t.sla is SlaKind.RESOLUTION
    )
    moved = replace(state, resolution_deadline=state.resolution_deadline - timedelta(hours=20))
    assert decide_timer(moved, warning, warning.due_at, SLA) == []
    assert decide_timer(replace(state, status=CaseStatus.RESOLVED), warning, warning.due_at, SLA) == []
    [event] = decide_timer(state, warning, warning.due_at, SLA)
    assert isinstance(event, SlaWarned)


def test_sla_event_ids_are_one_per_case_sla_kind_and_deadline() -> None:
    deadline = T0 + timedelta(hours=4)
    same = sla_event_id("case", SlaKind.RESOLUTION, TimerKind.BREACH, deadline)
    assert same == sla_event_id("case", SlaKind.RESOLUTION, TimerKind.BREACH, deadline)
    assert same != sla_event_id("case", SlaKind.RESOLUTION, TimerKind.WARNING, deadline)
    assert same != sla_event_id("case", SlaKind.RESOLUTION, TimerKind.BREACH, deadline - timedelta(hours=1))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(Severity)),
    st.sampled_from(list(Channel)),
    st.floats(min_value=0.01, max_value=0.99),
)
def test_every_warning_falls_inside_its_window_before_the_breach(
    severity: Severity, channel: Channel, fraction: float
) -> None:
    sla = SlaPolicy(warning_fraction=fraction)
    timers = timers_for(opened(severity, channel), sla)
    for kind in SlaKind:
        warning = next(t for t in timers if t.sla is kind and t.kind is TimerKind.WARNING)
        breach = next(t for t in timers if t.sla is kind and t.kind is TimerKind.BREACH)
        assert T0 < warning.due_at < breach.due_at == breach.deadline


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(Severity)), st.integers(min_value=0, max_value=14 * 24 * 60))
def test_a_reopen_never_breaches_at_once(severity: Severity, minutes_after_resolution: int) -> None:
    from service.domain.case import decide_signal

    resolved_at = T0 + timedelta(days=1)
    state = replace(opened(severity), status=CaseStatus.RESOLVED, resolved_at=resolved_at)
    now = resolved_at + timedelta(minutes=minutes_after_resolution)
    signal = Signal(
        source="s", id="2", kind=SignalKind.NPS, occurred_at=now, received_at=now, customer_id="c"
    )
    classification = Classification(
        severity=Severity.MINOR, category=Category.OTHER, reasons=(), policy_version="t"
    )
    [reopen] = decide_signal(state, signal, classification, SLA, now, case_ids=CASE_IDS)
    reopened = evolve(state, reopen)
    assert all(t.due_at > now for t in timers_for(reopened, SLA) if t.sla is SlaKind.RESOLUTION)


def test_a_resolved_case_waits_for_its_follow_up_and_a_closed_one_for_nothing() -> None:
    resolved_at = T0 + timedelta(hours=3)
    resolved = replace(opened(), status=CaseStatus.RESOLVED, resolved_at=resolved_at)
    [follow_up] = timers_for(resolved, SLA)
    assert (follow_up.kind, follow_up.due_at) == (TimerKind.FOLLOW_UP, resolved_at + timedelta(hours=48))
    [due] = decide_timer(resolved, follow_up, follow_up.due_at, SLA)
    assert due.type == "case.followup_due"
    assert decide_timer(evolve(resolved, due), follow_up, follow_up.due_at, SLA) == []
    assert timers_for(replace(resolved, status=CaseStatus.CLOSED), SLA) == []


def test_a_case_resolved_without_contact_and_reopened_has_no_first_response_clock() -> None:
    """A resolution answers the customer: the first-response clock of a reopened case stays stopped, so its
    long-past warning and breach never fire at the reopen."""
    from service.domain.case import decide_signal
    from service.domain.events import CaseResolved, ResolutionType

    state = opened()  # chat: first response due within the hour, never acknowledged
    resolved_at = T0 + timedelta(days=2)
    state = evolve(
        state,
        CaseResolved(
            case_id=state.case_id,
            at=resolved_at,
            actor="m",
            resolution_type=ResolutionType.APOLOGY_ONLY,
            root_cause="other",
            prevention_action="none",
        ),
    )
    now = resolved_at + timedelta(days=1)
    signal = Signal(
        source="s", id="2", kind=SignalKind.NPS, occurred_at=now, received_at=now, customer_id="c"
    )
    classification = Classification(
        severity=Severity.MINOR, category=Category.OTHER, reasons=(), policy_version="t"
    )
    [reopen] = decide_signal(state, signal, classification, SLA, now, case_ids=CASE_IDS)
    reopened = evolve(state, reopen)
    assert reopened.status is CaseStatus.OPEN
    timers = timers_for(reopened, SLA)
    assert {t.sla for t in timers} == {SlaKind.RESOLUTION}
    assert all(t.due_at > now for t in timers)
    first_response = next(
        t for t in timers_for(opened(), SLA) if t.sla is SlaKind.FIRST_RESPONSE and t.kind is TimerKind.BREACH
    )
    assert decide_timer(reopened, first_response, now, SLA) == []


def test_a_snapshot_resolved_before_the_rule_reopens_without_its_first_response_clock() -> None:
    """Snapshots stored before a resolution recorded the first response still stop that clock at the reopen."""
    from service.domain.case import decide_signal

    resolved_at = T0 + timedelta(days=2)
    state = replace(opened(), status=CaseStatus.RESOLVED, resolved_at=resolved_at)
    assert state.acknowledged_at is None
    now = resolved_at + timedelta(hours=1)
    signal = Signal(
        source="s", id="2", kind=SignalKind.NPS, occurred_at=now, received_at=now, customer_id="c"
    )
    classification = Classification(
        severity=Severity.MINOR, category=Category.OTHER, reasons=(), policy_version="t"
    )
    [reopen] = decide_signal(state, signal, classification, SLA, now, case_ids=CASE_IDS)
    reopened = evolve(state, reopen)
    assert reopened.acknowledged_at == resolved_at
    assert {t.sla for t in timers_for(reopened, SLA)} == {SlaKind.RESOLUTION}
