"""Stored case events map to binary-mode CloudEvents that match schemas/outgoing and the AsyncAPI document."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.adapters.kafka.contract import SLA_DATA_PATH, case_data_schema_path
from service.adapters.kafka.free_text import without_free_text
from service.adapters.kafka.outgoing import (
    CASE_EVENT_CLASSES,
    SOURCE,
    OutgoingMessage,
    OutgoingTopics,
    to_messages,
)
from service.adapters.kafka.schema_components import schema_path
from service.app.ports import LoggedEvent
from service.config import Settings
from service.domain.case import CaseState, CaseStatus, decide_signal, evolve, replay
from service.domain.events import (
    CASE_EVENT,
    CaseEscalated,
    CaseEvent,
    CaseOpened,
    CaseReopened,
    PersonalDataErased,
    SignalAttached,
    SlaBreached,
    SlaKind,
    SlaWarned,
)
from service.domain.severity import Classification, Severity
from service.domain.signals import Category, Channel, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.timers import TimerKind, decide_timer, sla_event_id, timers_for
from tests.cases import CASE_IDS
from tools.schemas import SCHEMAS_DIR

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
SLA = SlaPolicy()
TOPICS = OutgoingTopics(case_events="recovery.case-events.v1", sla="recovery.sla.v1")
EVENT_NAMESPACE = uuid.UUID("0b7e2c4e-8f5d-4a3b-9d61-2c8f7a9e1d42")
CE_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type"}


# --- building real stored events ---------------------------------------------------------------------------


def signal(n: int, at: datetime) -> Signal:
    return Signal(
        source="crm",
        id=f"s-{n}",
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at + timedelta(seconds=3),
        customer_id="c-1",
        channel=Channel.EMAIL,
        text="Nobody came and nobody called.",
    )


def classified(severity: Severity) -> Classification:
    return Classification(
        severity=severity, category=Category.MISSED_APPOINTMENT, reasons=("test",), policy_version="t"
    )


def opened() -> tuple[CaseOpened, CaseState]:
    [event] = decide_signal(None, signal(1, T0), classified(Severity.MINOR), SLA, T0 + timedelta(seconds=5), case_ids=CASE_IDS)
    assert isinstance(event, CaseOpened)
    return event, evolve(None, event)


def attached_and_escalated() -> tuple[SignalAttached, CaseEscalated, CaseState]:
    _, state = opened()
    later = T0 + timedelta(hours=1)
    attached, escalated = decide_signal(state, signal(2, later), classified(Severity.CRITICAL), SLA, later, case_ids=CASE_IDS)
    assert isinstance(attached, SignalAttached)
    assert isinstance(escalated, CaseEscalated)
    after = replay([opened()[0], attached, escalated])
    assert after is not None
    return attached, escalated, after


def reopened() -> CaseReopened:
    _, state = opened()
    resolved = replace(state, status=CaseStatus.RESOLVED, resolved_at=T0 + timedelta(hours=2))
    later = T0 + timedelta(days=1)
    [event] = decide_signal(resolved, signal(3, later), classified(Severity.MAJOR), SLA, later, case_ids=CASE_IDS)
    assert isinstance(event, CaseReopened)
    return event


def fired(state: CaseState, sla: SlaKind, kind: TimerKind) -> SlaWarned | SlaBreached:
    [timer] = [t for t in timers_for(state, SLA) if t.sla is sla and t.kind is kind]
    [event] = decide_timer(state, timer, timer.due_at + timedelta(seconds=1), SlaPolicy())
    assert isinstance(event, SlaWarned | SlaBreached)
    return event


def logged(event: CaseEvent, position: int = 1, version: int = 1) -> LoggedEvent:
    """The row the store writes: the event's JSON as CASE_EVENT.dump_json produces it."""
    return LoggedEvent(
        position=position,
        stream_id=event.case_id,
        version=version,
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{event.case_id}/{version}")),
        type=event.type,
        data=CASE_EVENT.dump_json(event).decode(),
        recorded_at=event.at + timedelta(milliseconds=20),
    )


def one(event: LoggedEvent, free_text: bool = False) -> OutgoingMessage:
    """The message on the case-events or SLA topic (a compensation may add one for billing, an erasure the
    customer's recovery.customer.erased)."""
    [message] = [m for m in to_messages(event, TOPICS, free_text=free_text) if m.topic != TOPICS.compensation and headers(m)["ce_type"] != "recovery.customer.erased"]
    return message


def case_record(stored: str, type_: str) -> dict[str, Any]:
    """The stored JSON as the case's record carries it: an erasure's without the customer id and case ids
    (those go out once, on recovery.customer.erased)."""
    data = json.loads(stored)
    return {k: v for k, v in data.items() if k not in ("customer_id", "case_ids")} if type_ == "case.personal_data_erased" else data


def for_billing(event: CaseEvent) -> list[OutgoingMessage]:
    return [m for m in to_messages(logged(event), TOPICS) if m.topic == TOPICS.compensation]


def test_compensation_goes_to_billing_once_within_limits_and_after_approval_otherwise() -> None:
    from service.adapters.kafka.contract import COMPENSATION_DATA_PATH
    from service.adapters.kafka.outgoing import compensation_event_id

    events = {getattr(e, "request_id", None): e for e in worked() if e.type == "case.compensation_requested"}
    approved = next(e for e in worked() if e.type == "case.compensation_approved")
    [within] = for_billing(events["r-1"])
    assert for_billing(events["r-2"]) == []  # waits: above the agent's limit
    [after_approval] = for_billing(approved)
    validator = Draft202012Validator(load(COMPENSATION_DATA_PATH))
    for message, request_id, approver in ((within, "r-1", "ana"), (after_approval, "r-2", "olu")):
        data = json.loads(message.value)
        validator.validate(data)
        assert data["request_id"] == request_id and data["approved_by"] == approver
        assert headers(message)["ce_type"] == "recovery.compensation.requested"
        assert message.event_id == headers(message)["ce_id"] == compensation_event_id(request_id)
        assert message.key == data["case_id"].encode()


def headers(message: OutgoingMessage) -> dict[str, str]:
    names = [name for name, _ in message.headers]
    assert len(names) == len(set(names)), "no header repeats"
    return {name: value.decode() for name, value in message.headers}


def load(path: str) -> Any:
    return json.loads((SCHEMAS_DIR / path).read_text(encoding="utf-8"))


def assert_valid(schema_path: str, body: bytes) -> Any:
    data = json.loads(body)
    validator = Draft202012Validator(load(schema_path), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [error.message for error in validator.iter_errors(data)]
    assert errors == []
    return data


def case_record_of(event: CaseEvent) -> CaseEvent:
    return replace(event, customer_id=None, case_ids=()) if isinstance(event, PersonalDataErased) else event


def case_events() -> list[CaseEvent]:
    event, _ = opened()
    attached, escalated, _ = attached_and_escalated()
    return [event, attached, escalated, reopened(), corrected(), *worked(), linked()]


def linked() -> CaseEvent:
    """The case joins an incident (domain/incidents.py link)."""
    from service.domain.incidents import link

    _, state = opened()
    [event] = link(state, "incident-1", T0 + timedelta(minutes=3))
    return event


def corrected() -> CaseEvent:
    """A new SLA policy version moves the open case's resolution clock and adds a named clock."""
    from service.domain.calendars import always_open
    from service.domain.clock_calendars import ClockCalendars, ClockRule
    from service.domain.policy_change import corrections

    _, state = opened()
    named = ClockRule(clock="regulatory_final_response", calendar=always_open(), duration=timedelta(weeks=8))
    calendars = ClockCalendars(version="v2", rules=(named,))
    sla = SlaPolicy(resolution={s: timedelta(hours=3) for s in Severity}, calendars=calendars)
    event = corrections(state, sla, T0 + timedelta(hours=5), "v1")
    assert event is not None
    return event


def worked() -> list[CaseEvent]:
    """A case worked from start to close through the workflow decisions, as staff would."""
    from service.domain.events import ResolutionType, StepKind, StepOutcome
    from service.domain.workflow import (
        Actor,
        decide_acknowledge,
        decide_add_step,
        decide_assign,
        decide_follow_up,
        decide_record_step,
        decide_resolve,
    )

    _, state = opened()
    manager = Actor("mia", "manager")
    now = state.opened_at + timedelta(minutes=5)
    from decimal import Decimal

    from service.domain.compensation import (
        CompensationHistory,
        decide_approve_compensation,
        decide_compensation_result,
        decide_request_compensation,
    )
    from service.domain.compensation_limits import CompensationLimits
    from service.domain.erasure import decide_erasure
    from service.domain.events import CompensationKind
    from service.domain.pauses import decide_pause, decide_resume
    from service.domain.sla import PauseReason
    from service.domain.summary import decide_edit_summary

    agent, owner, limits = Actor("ana", "agent"), Actor("olu", "owner"), CompensationLimits()
    decisions = [
        lambda s: decide_request_compensation(
            s, "r-1", CompensationKind.CREDIT, Decimal(20), "EUR", "sorry", agent, limits, CompensationHistory(), now
        ),
        lambda s: decide_request_compensation(
            s, "r-2", CompensationKind.REFUND, Decimal(900), "EUR", "broke it", agent, limits, CompensationHistory(), now
        ),
        lambda s: decide_approve_compensation(s, "r-2", owner, limits, CompensationHistory(), now),
        lambda s: decide_compensation_result(s, "r-1", True, "PAY-1", now),
        lambda s: decide_compensation_result(s, "r-2", False, "card expired", now),
        lambda s: decide_pause(s, manager, PauseReason.AWAITING_PARTS, None, SlaPolicy(), now),
        lambda s: decide_resume(s, manager, SlaPolicy(), now + timedelta(hours=1)),
        lambda s: decide_assign(s, "ana", manager, now),
        lambda s: decide_edit_summary(s, "The technician never came.", agent, now),
        lambda s: decide_acknowledge(s, manager, now),
        lambda s: decide_add_step(s, StepKind.CALL_CUSTOMER, manager, now),
        lambda s: decide_record_step(s, "step-1", StepOutcome.COMPLETED, "called back", manager, now),
        lambda s: decide_resolve(
            s, ResolutionType.APOLOGY_ONLY, "scheduling", "double-book check", manager, {"scheduling"}, now
        ),
        lambda s: decide_timer(s, timers_for(s, SlaPolicy())[0], now, SlaPolicy()),  # the follow-up falls due
        lambda s: decide_follow_up(s, s, True, "happy", manager, SlaPolicy(), now),
        lambda s: decide_erasure([s], s.customer_id, "erased-p", owner, now),
    ]
    events: list[CaseEvent] = []
    for decide in decisions:
        for event in decide(state):
            state = evolve(state, event)
            events.append(event)
    return events


def sla_events() -> list[SlaWarned | SlaBreached]:
    _, state = opened()
    return [fired(state, sla, kind) for sla in SlaKind for kind in (TimerKind.WARNING, TimerKind.BREACH)]


# --- case events ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", case_events(), ids=lambda e: e.type)
def test_a_case_event_is_a_binary_cloudevent_on_the_case_events_topic(event: CaseEvent) -> None:
    row = logged(event, position=7, version=3)
    message = one(row)
    assert message.topic == "recovery.case-events.v1"
    assert message.key == event.case_id.encode()
    assert message.event_id == row.event_id
    attributes = headers(message)
    assert set(attributes) == CE_HEADERS
    assert attributes["ce_specversion"] == "1.0"
    assert attributes["ce_id"] == row.event_id
    assert attributes["ce_source"] == "urn:recovery-loop"
    assert attributes["ce_type"] == "recovery." + event.type
    assert attributes["ce_subject"] == event.case_id
    assert attributes["content-type"] == "application/json"
    assert datetime.fromisoformat(attributes["ce_time"]) == event.at
    assert attributes["ce_time"].endswith("Z")


@pytest.mark.parametrize("event", case_events(), ids=lambda e: e.type)
def test_a_case_event_body_is_the_stored_json_without_free_text_and_matches_its_schema(event: CaseEvent) -> None:
    row = logged(event)
    data = assert_valid(case_data_schema_path(event.type), one(row).value)
    assert data == case_record(without_free_text(event.type, row.data), event.type)


@pytest.mark.parametrize("event", case_events(), ids=lambda e: e.type)
def test_published_with_free_text_a_case_event_body_is_the_stored_json(event: CaseEvent) -> None:
    row = logged(event)
    data = assert_valid(case_data_schema_path(event.type), one(row, free_text=True).value)
    assert data == case_record(row.data, event.type)
    assert CASE_EVENT.validate_python(data) == case_record_of(event)


def test_the_customer_free_text_of_a_signal_is_not_published_by_default() -> None:
    for event in case_events():
        assert b"Nobody came" not in one(logged(event)).value


def test_every_case_event_type_that_exists_has_a_data_schema() -> None:
    assert {event.type for event in case_events()} == set(CASE_EVENT_CLASSES)
    for stored_type in CASE_EVENT_CLASSES:
        Draft202012Validator.check_schema(load(case_data_schema_path(stored_type)))


def test_the_same_stored_event_maps_to_the_same_messages_every_time() -> None:
    row = logged(opened()[0])
    assert to_messages(row, TOPICS) == to_messages(row, TOPICS)
    assert one(row).event_id == row.event_id


def test_a_future_case_event_type_goes_to_the_case_events_topic_unchanged() -> None:
    data = {"type": "case.assigned", "case_id": "case-9", "at": "2026-03-29T01:00:00Z", "owner": "agent-7"}
    row = LoggedEvent(9, "case-9", 4, "e-9", "case.assigned", json.dumps(data), T0)
    message = one(row)
    assert message.topic == "recovery.case-events.v1"
    assert headers(message)["ce_type"] == "recovery.case.assigned"
    assert headers(message)["ce_time"] == "2026-03-29T01:00:00Z"
    assert message.key == b"case-9"
    assert json.loads(message.value) == data


def test_the_source_is_a_parameter_and_the_topics_come_from_the_settings() -> None:
    topics = OutgoingTopics.from_settings(Settings(topic_case_events="cases", topic_sla="slas"))
    assert topics == OutgoingTopics(case_events="cases", sla="slas")
    assert SOURCE == "urn:recovery-loop"
    _, state = opened()
    [case_message] = to_messages(logged(opened()[0]), topics, source="/other")
    [sla_message] = to_messages(logged(fired(state, SlaKind.RESOLUTION, TimerKind.WARNING)), topics, "/other")
    assert (case_message.topic, sla_message.topic) == ("cases", "slas")
    assert headers(case_message)["ce_source"] == headers(sla_message)["ce_source"] == "/other"


# --- SLA events -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", sla_events(), ids=lambda e: f"{e.type}-{e.sla}")
def test_an_sla_event_goes_only_to_the_sla_topic_with_its_sla_data(event: SlaWarned | SlaBreached) -> None:
    messages = to_messages(logged(event, position=11, version=2), TOPICS)
    assert [m.topic for m in messages] == ["recovery.sla.v1"]
    [message] = messages
    assert message.key == event.case_id.encode()
    attributes = headers(message)
    assert set(attributes) == CE_HEADERS
    expected_type = {"case.sla_warning": "recovery.sla.warning", "case.sla_breached": "recovery.sla.breached"}
    assert attributes["ce_type"] == expected_type[event.type]
    assert attributes["ce_subject"] == event.case_id
    assert attributes["ce_specversion"] == "1.0"
    assert attributes["content-type"] == "application/json"
    assert datetime.fromisoformat(attributes["ce_time"]) == event.at
    data = assert_valid(SLA_DATA_PATH, message.value)
    assert data == {
        "case_id": event.case_id,
        "customer_id": "c-1",
        "severity": "minor",
        "sla": event.sla.value,
        "deadline": event.deadline.isoformat().replace("+00:00", "Z"),
        "fired_at": event.at.isoformat().replace("+00:00", "Z"),
    }


def test_an_sla_event_id_is_the_id_of_its_case_sla_kind_and_deadline() -> None:
    _, state = opened()
    for sla in SlaKind:
        for kind in (TimerKind.WARNING, TimerKind.BREACH):
            event = fired(state, sla, kind)
            expected = sla_event_id(event.case_id, sla, kind, event.deadline)
            message = one(logged(event))
            assert message.event_id == headers(message)["ce_id"] == expected


def test_the_same_sla_event_stored_twice_keeps_one_id() -> None:
    _, state = opened()
    first = fired(state, SlaKind.RESOLUTION, TimerKind.BREACH)
    again = replace(first, at=first.at + timedelta(minutes=3))  # decided again after a crash
    ids = {
        one(logged(first, position=5, version=2)).event_id,
        one(logged(again, position=8, version=3)).event_id,
    }
    assert len(ids) == 1


def test_a_warning_and_a_breach_of_the_same_deadline_have_different_ids() -> None:
    _, state = opened()
    warning = fired(state, SlaKind.RESOLUTION, TimerKind.WARNING)
    breach = fired(state, SlaKind.RESOLUTION, TimerKind.BREACH)
    assert warning.deadline == breach.deadline
    assert one(logged(warning)).event_id != one(logged(breach)).event_id


def test_a_moved_deadline_gets_a_new_sla_id() -> None:
    _, state = opened()
    _, _, escalated = attached_and_escalated()
    before = fired(state, SlaKind.RESOLUTION, TimerKind.WARNING)
    after = fired(escalated, SlaKind.RESOLUTION, TimerKind.WARNING)
    assert before.deadline != after.deadline
    assert one(logged(before)).event_id != one(logged(after)).event_id


# --- AsyncAPI agrees with the messages --------------------------------------------------------------------


def asyncapi_message(topic: str, ce_type: str) -> dict[str, Any]:
    document = load("asyncapi.json")
    [(name, channel)] = [(n, c) for n, c in document["channels"].items() if c["address"] == topic]
    [operation] = [
        op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"
    ]
    assert operation["action"] == "send"
    messages = [
        document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        for ref in channel["messages"].values()
    ]
    [message] = [m for m in messages if m["headers"]["properties"]["ce_type"]["const"] == ce_type]
    return message


@pytest.mark.parametrize("event", [*case_events(), *sla_events()], ids=lambda e: f"{e.type}")
def test_every_message_matches_its_asyncapi_headers_key_and_payload(event: CaseEvent) -> None:
    for message in to_messages(logged(event), TOPICS):
        matches_asyncapi(message)


def matches_asyncapi(message: OutgoingMessage) -> None:
    spec = asyncapi_message(message.topic, headers(message)["ce_type"])
    assert spec["contentType"] == "application/json"
    assert Draft202012Validator(spec["headers"]).is_valid(headers(message))
    assert Draft202012Validator(spec["bindings"]["kafka"]["key"]).is_valid(message.key.decode())
    assert (SCHEMAS_DIR / schema_path(spec["payload"]["$ref"])).is_file()
    assert_valid(schema_path(spec["payload"]["$ref"]), message.value)


# --- stored data of an unexpected shape stops the relay ---------------------------------------------------


def broken(type_: str, data: str, stream_id: str = "case-1") -> LoggedEvent:
    return LoggedEvent(42, stream_id, 1, "e-42", type_, data, T0)


def sla_data(**changes: Any) -> str:
    _, state = opened()
    data = json.loads(CASE_EVENT.dump_json(fired(state, SlaKind.RESOLUTION, TimerKind.WARNING)))
    data.update(case_id="case-1", **changes)
    return json.dumps({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("case.opened", "{not json"),
        ("case.opened", "[1, 2]"),
        ("case.opened", '{"type": "case.opened", "at": "2026-03-29T00:30:00Z"}'),
        ("case.opened", '{"type": "case.opened", "case_id": "case-2", "at": "2026-03-29T00:30:00Z"}'),
        ("case.opened", '{"type": "case.escalated", "case_id": "case-1", "at": "2026-03-29T00:30:00Z"}'),
        ("case.opened", '{"type": "case.opened", "case_id": "case-1"}'),
        ("case.opened", '{"type": "case.opened", "case_id": "case-1", "at": "2026-03-29T00:30:00"}'),
        ("case.assigned", '{"type": "case.assigned", "case_id": "case-1", "at": 5}'),
        ("case.sla_warning", sla_data(deadline=None)),
        ("case.sla_warning", sla_data(sla="Lunch break")),  # not a clock name
        ("case.sla_warning", sla_data(at="soon")),
        ("case.sla_warning", sla_data(type="case.sla_breached")),
        ("signal.received", '{"type": "signal.received", "case_id": "case-1"}'),
        ("case.", '{"type": "case.", "case_id": "case-1", "at": "2026-03-29T00:30:00Z"}'),
    ],
)
def test_stored_data_of_an_unexpected_shape_raises_a_value_error_naming_position_and_type(
    type_: str, data: str
) -> None:
    with pytest.raises(ValueError, match=rf"position 42 \(type '{type_}'\)"):
        to_messages(broken(type_, data), TOPICS)
