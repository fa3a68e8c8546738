"""The queue's order: the next deadline of a running clock, by the same rule that arms the SLA timers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.adapters.http.console.views import next_clock
from service.domain.case import CaseState, CaseStatus, next_deadline, running_clocks
from service.domain.sla import PauseReason, PauseSpan, SlaClock, SlaPolicy
from service.domain.timers import TimerKind, timers_for
from tests.cases import T0, open_case

SLA = SlaPolicy()
REGULATORY = SlaClock(
    name="regulatory",
    started_at=T0,
    deadline=T0 + timedelta(hours=6),
    pausable=False,
    window=timedelta(hours=6),
)
AUDIT = SlaClock(name="audit", started_at=T0, deadline=T0 + timedelta(minutes=30))


def paused_at(at: datetime) -> tuple[PauseSpan, ...]:
    return (PauseSpan(reason=PauseReason.AWAITING_PARTS, started_at=at),)


def breach_timers(state: CaseState) -> set[datetime]:
    return {t.deadline for t in timers_for(state, SLA) if t.kind is TimerKind.BREACH}


def test_the_first_response_deadline_comes_first_until_the_first_contact_stops_it() -> None:
    assert next_deadline(open_case()) == T0 + timedelta(hours=1)
    assert next_deadline(open_case(acknowledged_at=T0 + timedelta(minutes=5))) == T0 + timedelta(hours=24)


def test_a_named_clock_due_sooner_is_next_until_it_stops() -> None:
    assert next_deadline(open_case(clocks=(AUDIT,))) == T0 + timedelta(minutes=30)
    stopped = replace(AUDIT, stopped_at=T0 + timedelta(minutes=10))
    assert next_deadline(open_case(clocks=(stopped,))) == T0 + timedelta(hours=1)


def test_a_pause_holds_the_pausable_clocks_and_leaves_the_others_running() -> None:
    held = open_case(clocks=(AUDIT,), pauses=paused_at(T0 + timedelta(minutes=10)))
    assert next_deadline(held) is None  # every clock honours pauses: nothing runs, the queue shows it last
    assert next_deadline(replace(held, clocks=(AUDIT, REGULATORY))) == T0 + timedelta(hours=6)
    breached_before = open_case(clocks=(AUDIT,), pauses=paused_at(T0 + timedelta(minutes=45)))
    assert next_deadline(breached_before) == T0 + timedelta(minutes=30)  # a breached clock is not held


def test_a_case_that_is_not_open_has_no_next_deadline() -> None:
    assert next_deadline(open_case(status=CaseStatus.RESOLVED, resolved_at=T0)) is None
    assert next_deadline(open_case(status=CaseStatus.CLOSED, resolved_at=T0)) is None


def test_the_next_deadline_is_the_soonest_breach_timer_the_case_waits_for() -> None:
    for state in (
        open_case(),
        open_case(acknowledged_at=T0),
        open_case(clocks=(AUDIT, REGULATORY)),
        open_case(clocks=(AUDIT, REGULATORY), pauses=paused_at(T0 + timedelta(minutes=10))),
        open_case(clocks=(AUDIT,), pauses=paused_at(T0 + timedelta(minutes=45))),
        open_case(pauses=paused_at(T0)),
        open_case(status=CaseStatus.RESOLVED, resolved_at=T0),
    ):
        running = breach_timers(state) if state.status is CaseStatus.OPEN else set()
        assert next_deadline(state) == min(running, default=None), state


def test_the_queue_row_shows_the_clock_it_is_ordered_by_not_a_paused_one_due_sooner() -> None:
    state = open_case(
        acknowledged_at=T0, clocks=(AUDIT, REGULATORY), pauses=paused_at(T0 + timedelta(minutes=10))
    )
    shown = next_clock(state, SLA, T0 + timedelta(minutes=20))
    assert (shown.name, shown.deadline, shown.state) == ("Regulatory", next_deadline(state), "on time")
    all_paused = open_case(acknowledged_at=T0, pauses=paused_at(T0 + timedelta(minutes=10)))
    assert next_clock(all_paused, SLA, T0 + timedelta(minutes=20)).state == "paused"


minutes = st.integers(min_value=-600, max_value=3000).map(lambda m: T0 + timedelta(minutes=m))
named_clocks = st.lists(
    st.builds(
        SlaClock,
        name=st.sampled_from(["audit", "regulatory", "first_response", "resolution"]),
        started_at=st.just(T0),
        deadline=minutes,
        pausable=st.booleans(),
        stopped_at=st.none() | minutes,
    ),
    max_size=4,
)
pauses = st.lists(
    st.builds(
        PauseSpan, reason=st.sampled_from(PauseReason), started_at=minutes, ended_at=st.none() | minutes
    ),
    max_size=3,
)


@given(
    status=st.sampled_from(CaseStatus),
    acknowledged=st.none() | minutes,
    first_response=minutes,
    resolution=minutes,
    clocks=named_clocks,
    spans=pauses,
)
def test_the_unrolled_next_deadline_is_the_soonest_running_clock(
    status: CaseStatus,
    acknowledged: datetime | None,
    first_response: datetime,
    resolution: datetime,
    clocks: list[SlaClock],
    spans: list[PauseSpan],
) -> None:
    state = open_case(
        status=status,
        acknowledged_at=acknowledged,
        resolved_at=None if status is CaseStatus.OPEN else T0,
        first_response_deadline=first_response,
        resolution_deadline=resolution,
        clocks=tuple(clocks),
        pauses=tuple(spans),
    )
    assert next_deadline(state) == min((c.deadline for c in running_clocks(state)), default=None)
