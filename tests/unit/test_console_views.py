"""What the console shows of a case's clocks, from the deadlines and now."""

from __future__ import annotations

from datetime import timedelta

from service.adapters.http.console.views import clocks, next_clock, time_left
from service.domain.case import CaseStatus
from service.domain.sla import SlaPolicy
from tests.cases import T0, open_case

SLA = SlaPolicy()


def test_a_clock_is_on_time_then_warned_at_three_quarters_then_breached_at_its_deadline() -> None:
    states = [clocks(open_case(), SLA, T0 + timedelta(minutes=m))[0].state for m in (10, 45, 60)]
    assert states == ["on time", "warned", "breached"]


def test_the_first_response_clock_stops_at_the_first_contact_and_says_when_it_was_late() -> None:
    acknowledged = open_case(acknowledged_at=T0 + timedelta(hours=2))
    first, resolution = clocks(acknowledged, SLA, T0 + timedelta(hours=3))
    assert first.state == "stopped" and first.late
    assert resolution.state == "on time"


def test_the_queue_shows_the_soonest_running_deadline_with_the_worst_state() -> None:
    shown = next_clock(open_case(), SLA, T0 + timedelta(minutes=50))
    assert (shown.name, shown.state) == ("First response", "warned")
    resolved = open_case(status=CaseStatus.RESOLVED, resolved_at=T0, acknowledged_at=T0)
    assert next_clock(resolved, SLA, T0).state == "stopped"


def test_time_left_reads_as_the_countdown_script_writes_it() -> None:
    assert time_left(T0 + timedelta(hours=2, minutes=5), T0) == "2h 05m left"
    assert time_left(T0, T0 + timedelta(minutes=3, seconds=59)) == "overdue by 3m"
    assert time_left(T0 + timedelta(days=2, hours=3), T0) == "2d 3h left"


def test_a_first_response_recorded_during_a_pause_reads_met_on_the_page_as_in_the_api() -> None:
    """The page's clock states are the domain's reports: a pause moves the deadline the response is held to."""
    from service.domain.case import evolve
    from service.domain.clock_reports import ClockState, clock_reports
    from service.domain.pauses import decide_pause
    from service.domain.sla import PauseReason
    from service.domain.workflow import Actor, decide_acknowledge

    mia = Actor("mia", "manager")
    case = open_case()
    for event in decide_pause(case, mia, PauseReason.AWAITING_CUSTOMER, None, SLA, T0 + timedelta(minutes=30)):
        case = evolve(case, event)
    answered = T0 + timedelta(hours=2)  # after the first-response deadline as set at opening (T0 + 1 h)
    for event in decide_acknowledge(case, mia, answered):
        case = evolve(case, event)
    [api_first, *_] = clock_reports(case, SLA, answered)
    [page_first, *_] = clocks(case, SLA, answered)
    assert api_first.state is ClockState.MET
    assert page_first.state == "stopped" and not page_first.late
