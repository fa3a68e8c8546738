"""What a case keeps: its state copied by `changed` as dataclasses.replace would, and no default clock record."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.case import CaseState, changed
from service.domain.severity import Severity
from service.domain.sla import SlaClock, default_clock, is_default
from tests.unit.test_sla_clocks import opened

T0 = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
instants = st.integers(0, 10).map(lambda h: T0 + timedelta(hours=h))


@st.composite
def clocks(draw: st.DrawFn) -> SlaClock:
    start = draw(instants)
    deadline = start + draw(st.sampled_from([timedelta(hours=4), timedelta(hours=24)]))
    return SlaClock(
        name=draw(st.sampled_from(["first_response", "resolution", "regulatory_final_response"])),
        started_at=start,
        deadline=deadline,
        warning_at=draw(st.sampled_from([None, start + (deadline - start) * 0.75])),
        calendar=draw(st.sampled_from(["24x7", "uk-office", None])),
        policy_version=draw(st.sampled_from([None, "v7"])),
        pausable=draw(st.booleans()),
        window=draw(st.sampled_from([None, deadline - start, timedelta(hours=1)])),
        window_from=draw(st.sampled_from([None, start, start + timedelta(minutes=5)])),
        stopped_at=draw(st.sampled_from([None, T0 + timedelta(hours=30)])),
    )


@given(clocks())
def test_a_default_clock_is_exactly_one_its_case_fields_give(clock: SlaClock) -> None:
    expected = clock.name in ("first_response", "resolution") and clock == default_clock(
        clock.name, clock.started_at, clock.deadline, clock.stopped_at
    )
    assert is_default(clock) is expected


def test_a_default_clock_counts_24x7_and_warns_at_the_configured_fraction() -> None:
    clock = default_clock("resolution", T0, T0 + timedelta(hours=24))
    assert (clock.calendar, clock.window, clock.warning_at, clock.policy_version) == (
        "24x7",
        timedelta(hours=24),
        None,
        None,
    )
    assert is_default(clock)


changes = st.fixed_dictionaries(
    {},
    optional={
        "version": st.integers(1, 99),
        "severity": st.sampled_from(list(Severity)),
        "owner": st.sampled_from([None, "agent-1"]),
        "acknowledged_at": st.sampled_from([None, T0]),
        "sla_fired": st.just(("resolution/warning/x",)),
    },
)


@given(changes)
def test_changed_copies_a_state_as_replace_does(fields: dict[str, object]) -> None:
    _, state = opened(Severity.MAJOR)
    after = changed(state, **fields)
    assert after == dataclasses.replace(state, **fields)  # type: ignore[arg-type]
    assert after is not state and type(after) is CaseState
    assert state == opened(Severity.MAJOR)[1]  # the original is untouched


def test_changed_refuses_a_field_the_state_does_not_have() -> None:
    _, state = opened(Severity.MAJOR)
    with pytest.raises(TypeError, match="no field 'colour'"):
        changed(state, colour="red")
