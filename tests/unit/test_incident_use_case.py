"""Incidents in the intake use case, on the in-memory stores: a surge of customers of one service and region
opens one incident in the batch that crosses, and redelivery, later batches and another instance's batches
open no second one (a batch that races one is refused whole: tests/store_behaviour/incidents.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from service.app.incidents import run_incident_command
from service.app.intake import IntakeResult, IntakeRules, apply_signals
from service.domain.errors import NotAllowed, WrongState
from service.domain.events import IncidentLinked
from service.domain.incident_commands import ConfirmIncident, DeclareIncident, DismissIncident
from service.domain.incidents import DEFAULT_SURGE, Crossing, IncidentPolicy, incident_stream
from service.domain.severity import load_default_policy
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeDatabase, FakeIncidentStore, FakeIntakeStore
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


async def test_a_proposal_confirmed_by_a_manager_links_the_customers_who_crossed_it() -> None:
    rule = DEFAULT_SURGE.model_copy(update={"on_crossing": Crossing.PROPOSE})
    rules = replace(RULES, incidents=IncidentPolicy(surges=(rule,)))
    database = FakeDatabase()
    intake = FakeIntakeStore(database)
    [proposed] = (await apply_signals(outage(20), {}, "g", intake, rules, NoWords(), database.clock)).incidents
    assert proposed.type == "incident.proposed"
    assert {c.incident_id for c in database.held.cases.values()} == {None}  # nothing links to a proposal
    incidents = FakeIncidentStore(database)
    with pytest.raises(NotAllowed):
        await run_incident_command(ConfirmIncident(), Actor("ana", "agent"), proposed.incident_id, incidents, rules.incidents)
    confirmed = await run_incident_command(
        ConfirmIncident(), Actor("mia", "manager"), proposed.incident_id, incidents, rules.incidents
    )
    assert confirmed.state.status == "declared" and confirmed.state.declared_by == "mia" and confirmed.linked == 20
    assert {c.incident_id for c in database.held.cases.values()} == {proposed.incident_id}
    dismissed = await run_incident_command(
        DismissIncident("a planned outage, told in advance"), Actor("mia", "manager"), proposed.incident_id,
        incidents, rules.incidents,
    )
    assert dismissed.state.status == "dismissed"
    with pytest.raises(WrongState):
        await run_incident_command(ConfirmIncident(), Actor("mia", "manager"), proposed.incident_id, incidents, rules.incidents)
    # dismissed: the scope may open a new incident, and later signals link nothing to the old one
    [again] = (await apply_signals(outage(20, first=50), {}, "g", intake, rules, NoWords(), database.clock)).incidents
    assert again.incident_id != proposed.incident_id


async def test_an_incident_declared_by_hand_links_every_later_failure_in_its_scope() -> None:
    database = FakeDatabase()
    incidents, intake = FakeIncidentStore(database), FakeIntakeStore(database)
    declared = await run_incident_command(
        DeclareIncident({"region": "north-east"}), Actor("mia", "manager"), None, incidents, RULES.incidents
    )
    with pytest.raises(WrongState):  # one open incident for the scope
        await run_incident_command(
            DeclareIncident({"region": "north-east"}), Actor("max", "owner"), None, incidents, RULES.incidents
        )
    await apply(intake, outage(2) + outage(1, first=10, region="south"))
    linked = {c.customer_id: c.incident_id for c in database.held.cases.values()}
    assert linked == {"cust-0": declared.state.incident_id, "cust-1": declared.state.incident_id, "cust-10": None}
