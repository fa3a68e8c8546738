"""Staff's internal notes stay inside the service: stored and replayed, never published, never in the schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.adapters.kafka.outgoing import CASE_EVENT_CLASSES, INTERNAL_TYPES, OutgoingTopics, to_messages
from service.app.ports import LoggedEvent
from service.domain.case import CaseState, replay
from service.domain.errors import MissingField
from service.domain.events import CASE_EVENT, NoteAdded
from service.domain.workflow import Actor, decide_add_note
from tests.contract.test_outgoing import logged, opened, worked

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def a_case() -> CaseState:
    state = replay([opened()[0], *worked()])  # a closed case
    assert state is not None
    return state


def test_a_note_is_decided_on_a_case_in_any_status_and_replays() -> None:
    case = a_case()
    [note] = decide_add_note(case, "customer prefers email", Actor("ana", "agent"), NOW)
    assert isinstance(note, NoteAdded) and note.actor == "ana" and note.note == "customer prefers email"
    assert CASE_EVENT.validate_json(CASE_EVENT.dump_json(note)) == note


def test_a_blank_note_is_refused_naming_the_field() -> None:
    with pytest.raises(MissingField) as refused:
        decide_add_note(a_case(), " \n ", Actor("ana", "agent"), NOW)
    assert refused.value.field == "note"


def test_a_note_is_never_published_nor_documented_as_an_outgoing_event() -> None:
    [note] = decide_add_note(a_case(), "internal only", Actor("ana", "agent"), NOW)
    row: LoggedEvent = logged(note, position=40, version=40)
    assert to_messages(row, OutgoingTopics("case-events", "sla")) == []
    assert {note.type} == INTERNAL_TYPES and note.type not in CASE_EVENT_CLASSES
