"""Incidents in the intake use case, on the in-memory stores: a surge of customers of one service and region
opens one incident in the batch that crosses, and redelivery, later batches and another instance's batches
open no second one (a batch that races one is refused whole: tests/store_behaviour/incidents.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from service.app.intake import IntakeResult, IntakeRules, apply_signals
from service.domain.events import IncidentLinked
from service.domain.incidents import IncidentPolicy, incident_stream
from service.domain.severity import load_default_policy
from service.domain.sla import SlaPolicy
from tests.cases import CASE_IDS
from tests.fakes import FakeDatabase, FakeIntakeStore
from tests.unit.test_intake_use_case import NoWords, nps

RULES = IntakeRules(load_default_policy(), SlaPolicy(), timedelta(days=30), CASE_IDS, IncidentPolicy())


def outage(n: int, first: int = 0, region: str = "north-east") -> list:  # type: ignore[type-arg]
    at = FakeDatabase().clock.now()
    return [
        replace(nps(f"s{k}", f"cust-{k}", at + timedelta(seconds=k)), service="broadband", region=region)
        for k in range(first, first + n)
    ]


async def apply(store: FakeIntakeStore, signals: list) -> IntakeResult:  # type: ignore[type-arg]
    return await apply_signals(signals, {}, "g", store, RULES, NoWords(), store.database.clock)


async def test_the_twentieth_customer_of_one_service_and_region_declares_one_incident() -> None:
    store = FakeIntakeStore(FakeDatabase())
    assert (await apply(store, outage(19))).incidents == ()
    [incident] = (await apply(store, outage(1, first=19))).incidents
    assert incident.type == "incident.declared" and incident.scope == {"service": "broadband", "region": "north-east"}
    assert incident.detection is not None and incident.detection.customers == 20
    assert incident.detection.baseline is None  # no history: the floor alone decided
    assert (await apply(store, outage(30, first=20))).incidents == ()  # open already
    assert (await apply(store, outage(20))).incidents == ()  # redelivered: duplicates, nothing new
    held = store.database.held
    assert list(held.incidents) == [incident.incident_id]
    assert held.events[incident_stream(incident.incident_id)] == [incident]
    # the twenty whose signals crossed are linked, the thirty after them too, each once
    linked = {c.customer_id: c.incident_id for c in held.cases.values()}
    assert linked == {f"cust-{k}": incident.incident_id for k in range(50)}
    joined = [e for events in held.events.values() for e in events if isinstance(e, IncidentLinked)]
    assert len(joined) == 50 and {e.actor for e in joined} == {None}


async def test_a_case_of_another_scope_or_already_linked_stays_as_it_is() -> None:
    store = FakeIntakeStore(FakeDatabase())
    await apply(store, outage(5, first=100, region="south"))
    [incident] = (await apply(store, outage(20))).incidents
    await apply(store, [replace(s, id=f"again-{s.id}") for s in outage(3)])  # more signals of linked customers
    held = store.database.held
    by_customer = {c.customer_id: c for c in held.cases.values()}
    assert {by_customer[f"cust-{k}"].incident_id for k in range(100, 105)} == {None}
    links = [e for e in held.events[by_customer["cust-0"].case_id] if isinstance(e, IncidentLinked)]
    assert [e.incident_id for e in links] == [incident.incident_id]


async def test_other_regions_and_signals_without_a_service_make_no_incident() -> None:
    store = FakeIntakeStore(FakeDatabase())
    split = outage(10) + outage(10, first=10, region="south")
    unplaced = [replace(s, service=None, region=None, id=f"u{s.id}") for s in outage(25, first=40)]
    assert (await apply(store, split + unplaced)).incidents == ()


async def test_a_scope_another_instance_opened_opens_nothing_more_here() -> None:
    database = FakeDatabase()
    mine, theirs = FakeIntakeStore(database), FakeIntakeStore(database)
    [won] = (await apply(theirs, outage(20))).incidents
    lost = await apply(mine, outage(5, first=20))  # the scope is open: nothing opened
    assert lost.incidents == () and list(database.held.incidents) == [won.incident_id]
