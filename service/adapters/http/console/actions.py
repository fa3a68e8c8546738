"""The console's actions on a case: each form becomes the API's command, with the API's bodies and deciders.

A form's fields go through the same body models as the API's JSON (the same bounds, the same refusals), then
to the same decider in a Command that carries the case version the form was filled in on (If-Match).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from service.adapters.http.bodies import (
    AssignBody,
    CompensationBody,
    FollowUpBody,
    NoteBody,
    OutcomeBody,
    PauseBody,
    ReopenBody,
    ResolveBody,
    StepBody,
    SummaryBody,
)
from service.adapters.http.console.pages import Console
from service.app.commands import Command, DecideWithHistory
from service.domain.case import CaseState
from service.domain.compensation import (
    CompensationHistory,
    compensation_request_id,
    decide_approve_compensation,
    decide_request_compensation,
)
from service.domain.errors import InvalidValue
from service.domain.events import CaseEvent
from service.domain.pauses import decide_pause, decide_resume
from service.domain.summary import decide_edit_summary
from service.domain.workflow import (
    Actor,
    decide_acknowledge,
    decide_add_note,
    decide_add_step,
    decide_assign,
    decide_follow_up,
    decide_record_step,
    decide_reopen,
    decide_resolve,
)

Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class Form:
    """One submitted action form: its case, its fields, who sent it and the version it was decided on."""

    case_id: str
    fields: Mapping[str, str]
    actor: Actor
    version: int
    console: Console

    def body(self, model: type[Body]) -> Body:
        """The fields the API's body model knows, an empty one as not given; a refusal names the field."""
        known = {k: v for k, v in self.fields.items() if k in model.model_fields and v != ""}
        try:
            return model.model_validate(known)
        except ValidationError as e:
            first = e.errors()[0]
            name = ".".join(map(str, first["loc"])) or "form"
            raise InvalidValue(f"{name.replace('_', ' ')}: {first['msg']}", name) from None

    def command(self, name: str, decide: Callable[[CaseState, datetime], list[CaseEvent]]) -> Command:
        return Command(
            self.case_id,
            name,
            self.actor.name,
            None,
            decide,
            self.console.trends,
            expected_version=self.version,
        )

    def with_history(self, name: str, decide: DecideWithHistory) -> Command:
        return replace(self.command(name, lambda s, now: []), with_history=decide)

    def with_latest(
        self, name: str, decide: Callable[[CaseState, CaseState, datetime], list[CaseEvent]]
    ) -> Command:
        return Command(
            self.case_id,
            name,
            self.actor.name,
            None,
            lambda s, now: [],
            self.console.trends,
            with_latest=decide,
            expected_version=self.version,
        )


def assign(form: Form) -> Command:
    owner = form.body(AssignBody).owner
    return form.command("assign", lambda s, now: decide_assign(s, owner, form.actor, now))


def acknowledge(form: Form) -> Command:
    return form.command("acknowledge", lambda s, now: decide_acknowledge(s, form.actor, now))


def add_step(form: Form) -> Command:
    kind = form.body(StepBody).kind
    return form.command("add_step", lambda s, now: decide_add_step(s, kind, form.actor, now))


def record_step(step_id: str) -> Callable[[Form], Command]:
    def record(form: Form) -> Command:
        body = form.body(OutcomeBody)
        return form.command(
            f"step_outcome:{step_id}",
            lambda s, now: decide_record_step(s, step_id, body.outcome, body.notes, form.actor, now),
        )

    return record


def request_compensation(form: Form) -> Command:
    body = form.body(CompensationBody)

    def decide(s: CaseState, history: CompensationHistory, now: datetime) -> list[CaseEvent]:
        request_id = compensation_request_id(s.case_id, form.actor.name, None, len(s.compensations) + 1)
        return decide_request_compensation(
            s,
            request_id,
            body.kind,
            body.amount,
            body.currency,
            body.reason,
            form.actor,
            form.console.limits,
            history,
            now,
        )

    return form.with_history("request_compensation", decide)


def approve(request_id: str) -> Callable[[Form], Command]:
    def approving(form: Form) -> Command:
        def decide(s: CaseState, history: CompensationHistory, now: datetime) -> list[CaseEvent]:
            return decide_approve_compensation(s, request_id, form.actor, form.console.limits, history, now)

        return form.with_history(f"approve:{request_id}", decide)

    return approving


def resolve(form: Form) -> Command:
    body = form.body(ResolveBody)

    def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
        return decide_resolve(
            s,
            body.resolution_type,
            body.root_cause,
            body.prevention_action,
            form.actor,
            form.console.root_causes,
            now,
            sla=form.console.sla,
        )

    return form.command("resolve", decide)


def follow_up(form: Form) -> Command:
    body = form.body(FollowUpBody)
    sla = form.console.sla
    return form.with_latest(
        "follow_up",
        lambda s, latest, now: decide_follow_up(s, latest, body.satisfied, body.notes, form.actor, sla, now),
    )


def reopen(form: Form) -> Command:
    reason = form.body(ReopenBody).reason
    sla = form.console.sla
    return form.with_latest(
        "reopen", lambda s, latest, now: decide_reopen(s, latest, reason, form.actor, sla, now)
    )


def add_note(form: Form) -> Command:
    note = form.body(NoteBody).note
    return form.command("add_note", lambda s, now: decide_add_note(s, note, form.actor, now))


def edit_summary(form: Form) -> Command:
    summary = form.body(SummaryBody).summary
    return form.command("edit_summary", lambda s, now: decide_edit_summary(s, summary, form.actor, now))


def pause(form: Form) -> Command:
    body = _with_utc_until(form).body(PauseBody)
    sla = form.console.sla
    return form.command(
        "pause", lambda s, now: decide_pause(s, form.actor, body.reason, body.until, sla, now)
    )


def _with_utc_until(form: Form) -> Form:
    """The page shows times in UTC, and a datetime-local field sends none: its `until` is read as UTC."""
    text = form.fields.get("until", "")
    try:
        until = datetime.fromisoformat(text) if text else None
    except ValueError:
        raise InvalidValue(f"until: {text[:40]!r} is not a date and time", "until") from None
    if until is None or until.tzinfo is not None:
        return form
    return replace(form, fields={**form.fields, "until": until.replace(tzinfo=UTC).isoformat()})


def resume(form: Form) -> Command:
    sla = form.console.sla
    return form.command("resume", lambda s, now: decide_resume(s, form.actor, sla, now))


# the form's name (its path on the case, and where its refusal shows) -> the command it makes, and what it says done
ACTIONS: dict[str, tuple[Callable[[Form], Command], str]] = {
    "assign": (assign, "Owner set."),
    "acknowledge": (acknowledge, "First response recorded: that clock has stopped."),
    "steps": (add_step, "Step added."),
    "compensations": (request_compensation, "Compensation requested."),
    "resolve": (resolve, "Case resolved."),
    "follow-up": (follow_up, "Follow-up recorded."),
    "reopen": (reopen, "Case reopened: the resolution clock restarts now."),
    "notes": (add_note, "Note added."),
    "summary": (edit_summary, "Summary saved."),
    "pause": (pause, "Case paused: the clocks that honour pauses stopped."),
    "resume": (resume, "Case resumed: its paused clocks go on with the time they had left."),
}
DONE = {name: done for name, (_, done) in ACTIONS.items()} | {
    "outcome": "Step outcome recorded.",
    "approved": "Compensation approved: it goes to billing.",
}
