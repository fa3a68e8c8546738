"""The one registry of stored shapes: every type round-trips, unknown ones are refused by name, and old
versions are upcast on read (shown on a synthetic shape: no production type has a second version yet)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from service.adapters.kafka import outgoing
from service.adapters.kafka.outgoing import CASE_EVENT_CLASSES, SLA_TYPES, OutgoingTopics, to_messages
from service.app.ports import LoggedEvent
from service.domain.case import CASE_STATE, CaseState, CaseStatus
from service.domain.events import CaseEvent
from service.domain.incidents import INCIDENT_EVENTS
from service.domain.registry import (
    EVENT_CLASSES,
    EVENTS,
    SNAPSHOT,
    StoredShape,
    UnreadableEvent,
    event_version,
    read_case_event,
    read_event,
)
from service.domain.severity import Severity
from service.domain.signals import Tier
from service.domain.trends import TrendDetected

# Stored amounts are finite (the API and billing refuse the rest); hypothesis would also make NaN and infinity.
st.register_type_strategy(Decimal, st.decimals(allow_nan=False, allow_infinity=False, places=2))
st.register_type_strategy(float, st.floats(allow_nan=False, allow_infinity=False))  # an incident's baseline
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_the_registry_is_the_union_of_case_events_the_trend_event_and_the_incident_events() -> None:
    (union, _) = get_args(CaseEvent)
    assert set(EVENT_CLASSES.values()) == {*get_args(union), TrendDetected, *INCIDENT_EVENTS}
    assert all(EVENTS[name].version == event_version(name) >= 1 for name in EVENT_CLASSES)


def test_the_outgoing_mapping_derives_from_the_registry() -> None:
    assert CASE_EVENT_CLASSES.keys() <= EVENT_CLASSES.keys()
    assert SLA_TYPES.keys() <= EVENT_CLASSES.keys() - CASE_EVENT_CLASSES.keys()


@settings(deadline=None)  # the first draw of a type builds its strategy: slow on a busy machine
@given(st.data())
def test_every_registered_type_round_trips_through_its_stored_json(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(EVENT_CLASSES)))
    event = data.draw(st.from_type(EVENT_CLASSES[name]))
    stored = EVENTS[name].adapter.dump_json(event)
    assert read_event(name, EVENTS[name].version, stored) == event


def test_an_unregistered_type_is_refused_by_name() -> None:
    with pytest.raises(UnreadableEvent, match="'case.exploded' is not a registered event type"):
        read_event("case.exploded", 1, '{"type": "case.exploded"}')


def test_a_trend_event_is_not_a_case_event() -> None:
    trend = TrendDetected(at=AT, tag="scheduling", count=6, window_days=90, case_ids=("a",))
    stored = EVENTS[trend.type].adapter.dump_json(trend)
    with pytest.raises(UnreadableEvent, match="not a case event"):
        read_case_event(trend.type, 1, stored)


def test_a_version_newer_than_this_build_is_refused() -> None:
    with pytest.raises(UnreadableEvent, match="stored at schema version 2; this build reads 1 to 1"):
        read_event("case.closed", 2, "{}")


def test_a_refused_shape_names_the_field_and_never_the_value() -> None:
    data = {"type": "case.assigned", "case_id": "c", "at": "2026-03-01T09:30:00Z", "actor": "ana", "owner": 7}
    secret = {**data, "at": "my secret complaint text"}
    with pytest.raises(UnreadableEvent, match=r"case.assigned \(schema version 1\): owner: ") as refused:
        read_event("case.assigned", 1, json.dumps(data))
    with pytest.raises(UnreadableEvent) as hidden:
        read_event("case.assigned", 1, json.dumps(secret))
    assert "secret" not in str(refused.value) + str(hidden.value)
    with pytest.raises(UnreadableEvent, match="case.closed .*Invalid JSON"):
        EVENTS["case.closed"].read(1, "{")


def test_a_case_snapshot_round_trips_at_its_version() -> None:
    state = CaseState(
        case_id="c-1",
        customer_id="cust",
        ordinal=1,
        status=CaseStatus.OPEN,
        severity=Severity.MAJOR,
        customer_tier=Tier.GOLD,
        channel=None,
        opened_at=AT,
        received_at=AT,
        first_response_deadline=AT,
        resolution_deadline=AT,
        resolution_clock_started_at=AT,
        version=3,
    )
    assert SNAPSHOT.read(SNAPSHOT.version, CASE_STATE.dump_json(state)) == state


# A synthetic history of one shape: version 1 called the owner `owner_name`; version 2 renamed it; version 3
# added `team`, which version 2 events lacked and which then meant the default team.
@dataclass(frozen=True, kw_only=True)
class Handed:
    type: Literal["x.handed"] = "x.handed"
    case_id: str
    owner: str
    team: str


def _rename_owner(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["owner"] = data.pop("owner_name")
    return data


def _default_team(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "team": "default"}


HANDED = StoredShape("x.handed", TypeAdapter(Handed), {1: _rename_owner, 2: _default_team})


def test_the_version_a_shape_writes_follows_from_its_upcasters() -> None:
    assert HANDED.version == 3
    with pytest.raises(ValueError, match="without gaps"):
        StoredShape("x.handed", TypeAdapter(Handed), {2: _default_team})


def test_each_older_version_is_upcast_to_the_current_shape_on_read() -> None:
    current = Handed(case_id="c", owner="ana", team="default")
    assert HANDED.read(1, '{"type": "x.handed", "case_id": "c", "owner_name": "ana"}') == current
    assert HANDED.read(2, '{"type": "x.handed", "case_id": "c", "owner": "ana"}') == current
    assert (
        HANDED.read(3, '{"type": "x.handed", "case_id": "c", "owner": "ana", "team": "default"}') == current
    )
    assert json.loads(HANDED.current_json(1, '{"type":"x.handed","case_id":"c","owner_name":"ana"}')) == {
        "type": "x.handed",
        "case_id": "c",
        "owner": "ana",
        "team": "default",
    }
    with pytest.raises(UnreadableEvent, match="x.handed: the stored data is not valid JSON"):
        HANDED.read(1, "{")
    with pytest.raises(UnreadableEvent, match="x.handed: the stored data is not a JSON object"):
        HANDED.read(2, "[]")
    text = '{"type":"x.handed","case_id":"c","owner":"ana","team":"t"}'
    assert HANDED.current_json(3, text) is text  # the current version is passed on as it is stored


def logged(type_: str, data: str, schema_version: int) -> LoggedEvent:
    return LoggedEvent(
        1, "c", 1, "00000000-0000-5000-8000-000000000001", type_, data, AT, None, schema_version
    )


def test_the_relay_publishes_an_old_version_in_the_current_shape_and_parks_a_newer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """case.assigned given a synthetic version 2 (its owner was once `owner_name`): what a registration does."""
    assigned = dataclasses.replace(EVENTS["case.assigned"], upcasters={1: _rename_owner})
    monkeypatch.setattr(outgoing, "EVENTS", {**EVENTS, "case.assigned": assigned})
    old = {
        "type": "case.assigned",
        "case_id": "c",
        "at": "2026-03-01T09:30:00Z",
        "actor": "mia",
        "owner_name": "ana",
    }
    topics = OutgoingTopics("case-events", "sla")
    (message,) = to_messages(logged("case.assigned", json.dumps(old), 1), topics)
    assert json.loads(message.value)["owner"] == "ana" and "owner_name" not in json.loads(message.value)
    with pytest.raises(ValueError, match="schema version 3"):
        to_messages(logged("case.assigned", json.dumps(old), 3), topics)
