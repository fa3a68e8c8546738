"""What every IntakeStore does with incidents, fake or PostgreSQL: a scope's distinct customers counted in its
window (edges included, this batch's signals too), its baseline over the period before, and one open incident
per scope."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from service.domain.case import evolve
from service.domain.errors import ConcurrencyConflict
from service.domain.incident_commands import DeclareIncident, DismissIncident, decide_incident
from service.domain.incidents import (
    GroupKey,
    IncidentStatus,
    OpenIncident,
    SurgeCount,
    SurgeRule,
    detect,
    evolve_incident,
    link,
)
from service.domain.intake import NewEvent
from service.domain.signals import Signal
from service.domain.workflow import Actor
from tests.store_behaviour.intake import nps, planned, recorded
from tests.store_behaviour.stores import Behaviour, Stores, now_of

RULE = SurgeRule(
    name="tight",
    group_by=(GroupKey.SERVICE, GroupKey.REGION),
    window=timedelta(minutes=10),
    min_customers=3,
    baseline_multiple=2,
    baseline_period=timedelta(minutes=40),
)
NORTH = (("service", "broadband"), ("region", "north"))


def failed(signal_id: str, customer: str, at: datetime, region: str = "north", score: int = 2) -> Signal:
    return replace(nps(signal_id, customer, at, score=score), service="broadband", region=region)


async def counted(stores: Stores, end: datetime) -> SurgeCount:
    async with stores.intake.transaction() as tx:
        [count] = await tx.surge_counts([(RULE, NORTH, end)])
    return count


async def a_scope_counts_its_distinct_failing_customers_inside_its_window(stores: Stores) -> None:
    end = await now_of(stores)
    await recorded(
        stores,
        failed("edge", "c0", end - RULE.window),  # on the window's open edge: out
        failed("in-1", "c1", end - RULE.window + timedelta(seconds=1)),
        failed("in-2", "c1", end - timedelta(minutes=1)),  # the same customer again: one
        failed("in-3", "c2", end),  # on its closed edge: in
        failed("later", "c3", end + timedelta(seconds=1)),  # after the end: out
        failed("south", "c4", end, region="south"),  # another scope
        failed("happy", "c5", end, score=9),  # not a failure
    )
    count = await counted(stores, end)
    assert (count.customers, count.baseline, count.window_end) == (2, None, end)


async def the_baseline_is_the_mean_of_distinct_customers_per_window_over_the_period_before(stores: Stores) -> None:
    end = await now_of(stores)
    start = end - RULE.window  # the baseline period is the four windows before (start - 40 min, start]
    earlier = [
        failed(f"b{w}-{k}", f"u{w}-{k % 2}", start - w * RULE.window - timedelta(minutes=k))
        for w in range(4)
        for k in range(3)
    ]  # window w holds two distinct customers (k 0 and 2 are the same one): 8 pairs over 4 windows
    too_old = failed("old", "u-old", start - 4 * RULE.window)  # the period's open edge: out
    surge = [failed(f"s{k}", f"s{k}", end - timedelta(seconds=k)) for k in range(3)]
    await recorded(stores, *earlier, too_old, *surge)
    count = await counted(stores, end)
    assert (count.customers, count.baseline) == (3, 2.0)
    assert detect(count, end) is None  # 3 < 2 x 2.0


async def a_scope_has_one_open_incident_and_a_second_is_a_lost_race(stores: Stores) -> None:
    end = await now_of(stores)
    await recorded(stores, *(failed(f"s{k}", f"c{k}", end) for k in range(3)))
    event = detect(await counted(stores, end), end)
    assert event is not None and event.type == "incident.declared"
    async with stores.intake.transaction() as tx:
        assert await tx.open_incidents() == {}
        assert await tx.customers_in_window(RULE, NORTH, end) == ["c0", "c1", "c2"]
        await tx.record_incidents([event])
    async with stores.intake.transaction() as tx:
        [(key, opened)] = (await tx.open_incidents()).items()
        assert key.startswith('["tight",') and opened == OpenIncident(
            event.incident_id, IncidentStatus.DECLARED, False, NORTH
        )
    again = replace(event, incident_id="another-id")
    with pytest.raises(ConcurrencyConflict):
        async with stores.intake.transaction() as tx:
            await tx.record_incidents([again])


async def cases_saved_by_a_batch_join_an_incident_in_the_same_transaction(stores: Stores) -> None:
    end = await now_of(stores)
    async with stores.intake.transaction() as tx:
        plan = await planned(tx, [failed("a", "c1", end), failed("b", "c2", end)], end)
        await tx.record(plan, "g", {})
        cases = await tx.latest_cases(["c1", "c2"])
        [event] = link(cases["c1"], "incident-1", end)
        joined = evolve(cases["c1"], event)
        await tx.record_links([NewEvent(joined.case_id, joined.version, event)], [joined])
    async with stores.intake.transaction() as tx:
        after = await tx.latest_cases(["c1", "c2"])
    assert (after["c1"].incident_id, after["c1"].version) == ("incident-1", joined.version)
    assert after["c2"].incident_id is None and link(after["c1"], "incident-2", end) == []


async def an_incidents_row_and_stream_follow_its_events_and_a_scope_declared_twice_by_hand_conflicts(
    stores: Stores,
) -> None:
    end = await now_of(stores)
    mia = Actor("mia", "manager")
    async with stores.incidents.transaction() as tx:
        assert await tx.incident("no-such-incident") is None
        [declared] = decide_incident(DeclareIncident({"region": "north"}), None, mia, end)
        state = evolve_incident(None, declared)
        await tx.record_incident([declared], state)
    async with stores.incidents.transaction() as tx:
        assert await tx.incident(state.incident_id) == state
        [(key, opened)] = (await tx.open_incidents()).items()
        assert key == state.scope_key and opened.by_hand and opened.scope == (("region", "north"),)
        [dismissed] = decide_incident(DismissIncident("a false alarm"), state, mia, end)
        await tx.record_incident([dismissed], evolve_incident(state, dismissed))
    async with stores.incidents.transaction() as tx:
        after = await tx.incident(state.incident_id)
        assert after is not None and (after.status, after.version, after.reason) == ("dismissed", 2, "a false alarm")
        assert await tx.open_incidents() == {}
        [again] = decide_incident(DeclareIncident({"region": "north"}), None, mia, end + timedelta(seconds=1))
        await tx.record_incident([again], evolve_incident(None, again))  # dismissed: the scope is free
    with pytest.raises(ConcurrencyConflict):
        async with stores.incidents.transaction() as tx:
            [third] = decide_incident(DeclareIncident({"region": "north"}), None, mia, end + timedelta(seconds=2))
            await tx.record_incident([third], evolve_incident(None, third))


BEHAVIOURS: list[Behaviour] = [
    a_scope_counts_its_distinct_failing_customers_inside_its_window,
    the_baseline_is_the_mean_of_distinct_customers_per_window_over_the_period_before,
    a_scope_has_one_open_incident_and_a_second_is_a_lost_race,
    cases_saved_by_a_batch_join_an_incident_in_the_same_transaction,
    an_incidents_row_and_stream_follow_its_events_and_a_scope_declared_twice_by_hand_conflicts,
]
