"""The case page's timeline: every event a sentence with its actor and time, quoting only what staff wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from service.adapters.http.console.timeline import timeline
from service.app.reads import StoredEvent
from service.domain.case import replay
from service.domain.events import CASE_EVENT, CaseEvent, SlaKind
from service.domain.timers import TimerKind
from service.domain.workflow import Actor, decide_add_note
from tests.contract.test_outgoing import case_events, fired, opened

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def stored(events: list[CaseEvent]) -> list[StoredEvent]:
    return [
        StoredEvent(i, i, f"e-{i}", e.type, T0, CASE_EVENT.dump_json(e).decode())
        for i, e in enumerate(events, 1)
    ]


def a_history() -> list[CaseEvent]:
    event, state = opened()
    sla = [
        fired(state, SlaKind.FIRST_RESPONSE, TimerKind.WARNING),
        fired(state, SlaKind.RESOLUTION, TimerKind.BREACH),
    ]
    events = [*case_events(), *sla]
    closed = replay([event, *case_events()[4:]])
    assert closed is not None
    return [*events, *decide_add_note(closed, "customer prefers email", Actor("ana", "agent"), T0)]


def test_every_event_of_a_worked_case_reads_as_its_own_sentence() -> None:
    history = a_history()
    lines = timeline(stored(history))
    generic = [e.type for e, line in zip(history, lines, strict=True) if line.sentence == _generic(e.type)]
    assert generic == []
    said = {e.type: line for e, line in zip(history, lines, strict=True)}
    assert said["case.assigned"].sentence == "Assigned to ana" and said["case.assigned"].actor == "mia"
    assert said["case.sla_breached"].sentence.startswith("The resolution clock breached (deadline ")
    assert said["case.note_added"].sentence == "Added an internal note"
    assert said["case.note_added"].quote == "customer prefers email"
    assert said["case.step_recorded"].quote == "called back"
    assert said["case.opened"].sentence.startswith("Case opened, ")


def test_only_staff_text_is_quoted_and_an_unknown_type_still_reads() -> None:
    lines = timeline(stored(a_history()))
    assert {line.quote for line in lines if line.quote} <= {
        "customer prefers email",
        "called back",
        "double-book check",
        "happy",
        "sorry",
        "broke it",
        "card expired",
        "The technician never came.",  # the summary staff rewrote
        *{line.quote for line in lines if line.sentence.startswith("Reopened")},
    }
    [unknown] = timeline([StoredEvent(1, 1, "e-1", "case.something_new", T0, '{"actor": "bo"}')])
    assert (unknown.sentence, unknown.actor, unknown.quote) == ("Something new", "bo", None)


def _generic(type_: str) -> str:
    return type_.removeprefix("case.").replace("_", " ").capitalize()
