"""The commands on a case, one entry each: its path, its body and the domain command the body makes.

The API's command router and the console's forms are both built from this table, so a command added here is in
the API, in OpenAPI and in the console at once (the console shows a form for it once its template has one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.adapters.http.bodies import (
    AssignBody,
    CommandBody,
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
from service.domain.commands import (
    Acknowledge,
    AddNote,
    AddStep,
    ApproveCompensation,
    Assign,
    Command,
    EditSummary,
    FollowUp,
    Pause,
    RecordStep,
    Reopen,
    RequestCompensation,
    Resolve,
    Resume,
)
from service.domain.workflow import RESOLVERS

MakeCommand = Callable[[Any, Mapping[str, str]], Command]
"""(the validated body, or None for a command without one; the ids in the path) -> the command."""


@dataclass(frozen=True)
class CaseCommand:
    name: str  # the API endpoint's name (OpenAPI's operation id and summary)
    path: str  # under the case: POST /v1/cases/{case_id}/<path>, and the console's form posts there too
    make: MakeCommand
    doc: str  # the API endpoint's description
    done: str  # what the console says once it is applied
    body: type[CommandBody] | None = None
    method: str = "POST"
    roles: frozenset[str] = frozenset()  # only these roles (403 before the body is read); empty: any staff
    form: str = ""  # the console form's key, where its refusal shows (the path's ids filled in); "": the path

    @property
    def ids(self) -> list[str]:
        """The ids the path names besides the case, e.g. step_id."""
        return re.findall(r"{(\w+)}", self.path)

    def form_key(self, ids: Mapping[str, str]) -> str:
        return (self.form or self.path).format(**ids)

    @property
    def done_key(self) -> str:
        """The console's `?done=` value after it: the form key's first part (outcome, approve, assign, …)."""
        return (self.form or self.path).split(":")[0]


CASE_COMMANDS: tuple[CaseCommand, ...] = (
    CaseCommand("assign", "assign", lambda b, _: Assign(b.owner), "Set the owner.", "Owner set.", AssignBody),
    CaseCommand(
        "acknowledge",
        "acknowledge",
        lambda b, _: Acknowledge(),
        "Record the first response to the customer: it stops the first-response clock.",
        "First response recorded: that clock has stopped.",
    ),
    CaseCommand(
        "add_step",
        "steps",
        lambda b, _: AddStep(b.kind),
        "Add a recovery step; it is numbered step-1, step-2, … on its case.",
        "Step added.",
        StepBody,
    ),
    CaseCommand(
        "record_step",
        "steps/{step_id}/outcome",
        lambda b, ids: RecordStep(ids["step_id"], b.outcome, b.notes),
        "End a step completed, skipped or failed, with notes. A completed call or email is the first response.",
        "Step outcome recorded.",
        OutcomeBody,
        form="outcome:{step_id}",
    ),
    CaseCommand(
        "resolve",
        "resolve",
        lambda b, _: Resolve(b.resolution_type, b.root_cause, b.prevention_action),
        "Resolve (manager or owner) with a resolution type, a root-cause tag and a prevention action.",
        "Case resolved.",
        ResolveBody,
        roles=RESOLVERS,
    ),
    CaseCommand(
        "request_compensation",
        "compensations",
        lambda b, _: RequestCompensation(b.kind, b.amount, b.currency, b.reason),
        """Request a refund, credit or comped service; the case then shows it with billing's `request_id`.

        The `request_id` is unique across all cases: a uuid5 of (case, actor, Idempotency-Key), or of (case, the
        request's number on the case) without a key. It goes to billing at once when the actor's limit covers it
        plus what the actor already granted on this case without approval (failed ones not counted), and the
        case's total granted stays within 1.5x the amount at stake (a stake of 0: every request waits);
        otherwise it waits for a manager's or owner's approval and `needs_approval` says why. A case has one
        currency: its amount at stake's, else its first compensation's (another one: 422 naming `currency`).
        """,
        "Compensation requested.",
        CompensationBody,
    ),
    CaseCommand(
        "approve_compensation",
        "compensations/{request_id}/approve",
        lambda b, ids: ApproveCompensation(ids["request_id"]),
        """Approve a waiting compensation (manager within their limit, or owner): then it goes to billing.

        403 for the one who requested it (four eyes, whatever their role); 409 while the case is closed.
        """,
        "Compensation approved: it goes to billing.",
        roles=RESOLVERS,
        form="approve:{request_id}",
    ),
    CaseCommand(
        "follow_up",
        "follow-up",
        lambda b, _: FollowUp(b.satisfied, b.notes),
        """Record the follow-up: satisfied closes the case, not satisfied reopens it.

        409 when not satisfied and the customer has a newer case: only their latest case reopens.
        """,
        "Follow-up recorded.",
        FollowUpBody,
    ),
    CaseCommand(
        "reopen",
        "reopen",
        lambda b, _: Reopen(b.reason),
        """Reopen a resolved or closed case with a reason; the resolution clock restarts now.

        409 when the customer has a newer case: only their latest case reopens.
        """,
        "Case reopened: the resolution clock restarts now.",
        ReopenBody,
    ),
    CaseCommand(
        "add_note",
        "notes",
        lambda b, _: AddNote(b.note),
        "Add an internal note for staff, on a case in any status: it is in the case's history, never published.",
        "Note added.",
        NoteBody,
    ),
    CaseCommand(
        "edit_summary",
        "summary",
        lambda b, _: EditSummary(b.summary),
        """Rewrite the case's summary (what went wrong, in one line); any staff while the case is open, a manager
        or owner once it is resolved or closed (403 otherwise). The same summary again changes nothing.""",
        "Summary saved.",
        SummaryBody,
        method="PUT",
    ),
    CaseCommand(
        "pause",
        "pause",
        lambda b, _: Pause(b.reason, b.until),
        """Pause an open case: awaiting_customer, awaiting_parts or awaiting_third_party, optionally `until`.

        The clocks that honour pauses stop; at the resume each gets back the open time the pause took. It
        resumes by itself at `until` or when the reason's budget for the case runs out, whichever is first;
        a signal from the customer ends an awaiting_customer pause. 409 when the case is not open, is already
        paused or has spent that reason's budget; 422 for an `until` not in the future.
        """,
        "Case paused: the clocks that honour pauses stopped.",
        PauseBody,
    ),
    CaseCommand(
        "resume",
        "resume",
        lambda b, _: Resume(),
        "End the case's pause; its paused clocks go on with the open time they had left. 409 when not paused.",
        "Case resumed: its paused clocks go on with the time they had left.",
    ),
)
