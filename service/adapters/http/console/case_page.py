"""The case page and its actions, each decided on the version the form was filled in on.

Actions run the same use case (run_command) with the same bodies and deciders as the API's command router,
never an HTTP call to the API, so the console can never do what the API refuses.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from service.adapters.http.case_commands import CASE_COMMANDS, CaseCommand
from service.adapters.http.console import timeline, views
from service.adapters.http.console.actions import DONE, Form
from service.adapters.http.console.offers import offers
from service.adapters.http.console.pages import (
    PRINTABLE,
    Console,
    TooLarge,
    expired,
    form,
    go,
    render,
    signed_in,
)
from service.adapters.http.console.session import csrf_ok
from service.adapters.http.errors import status_of
from service.app.commands import CaseNotFound, run_command
from service.domain.bounds import MAX_ID_LENGTH
from service.domain.case import CompensationStatus, case_currency
from service.domain.errors import DomainError
from service.domain.events import CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.sla import PauseReason
from service.domain.summary import MAX_SUMMARY_LENGTH
from service.domain.workflow import Actor as DomainActor

Id = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE.pattern)]
# re-renders the page a refused form was on, with the reason next to that form: (status, form key, reason)
Refused = Callable[[int, str, str], Awaitable[Response]]
CHOICES = {
    "step_kinds": list(StepKind),
    "outcomes": list(StepOutcome),
    "resolution_types": list(ResolutionType),
    "compensation_kinds": list(CompensationKind),
    "pause_reasons": list(PauseReason),
}


COMMAND_PATHS = [
    (re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", entry.path) + "$"), entry)
    for entry in CASE_COMMANDS
]
"""Each command's path under the case, its ids captured: the page's forms post where the API's commands go."""


def case_routes(router: APIRouter, console: Console) -> None:
    @router.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: Id, done: str = "") -> Response:
        if await signed_in(request, console.sessions) is None:
            return go("/console/sign-in")
        return await show_case(request, console, case_id, 200, done=DONE.get(done))

    @router.post("/cases/{case_id}/{action:path}")
    async def act_on_case(request: Request, case_id: Id, action: str) -> Response:
        found = _command_at(action)
        if found is None:
            return HTMLResponse("not found", 404)
        entry, ids = found

        async def refused(status: int, key: str, reason: str) -> Response:
            return await show_case(request, console, case_id, status, refusal=(key, reason))

        then = f"/console/cases/{case_id}?done={entry.done_key}"
        return await act(request, console, case_id, entry.form_key(ids), entry, ids, refused, then)


def _command_at(action: str) -> tuple[CaseCommand, dict[str, str]] | None:
    """The command whose path this is, with its ids (each a bounded printable id); None: no such command."""
    for pattern, entry in COMMAND_PATHS:
        matched = pattern.match(action)
        if matched is None:
            continue
        ids = matched.groupdict()
        if all(len(v) <= MAX_ID_LENGTH and PRINTABLE.match(v) for v in ids.values()):
            return entry, ids
    return None


async def act(
    request: Request,
    console: Console,
    case_id: str,
    key: str,
    entry: CaseCommand,
    ids: Mapping[str, str],
    refused: Refused,
    then: str,
) -> Response:
    """Run one action as the API runs its command; a refusal is shown next to its form and changes nothing."""
    try:
        fields = await form(request)
    except TooLarge as e:
        return HTMLResponse(str(e), 413)
    who = await signed_in(request, console.sessions)
    if who is None:
        return go("/console/sign-in")
    session, actor = who
    if not csrf_ok(session, fields.get("csrf")):
        return expired(request)
    version = fields.get("version", "")
    if not version.isdigit() or len(version) > 18:
        return await refused(422, key, "The form had no case version: reload the page.")
    try:
        submitted = Form(case_id, fields, DomainActor(actor.actor, actor.role), int(version))
        await run_command(submitted.submission(entry, ids), console.store_of(), console.rules, console.trends)
    except CaseNotFound:
        return await show_case(request, console, case_id, 404)
    except DomainError as e:
        return await refused(status_of(e), key, e.detail)
    return go(then)


async def show_case(
    request: Request, console: Console, case_id: str, status: int, **context: Any
) -> Response:
    who = await signed_in(request, console.sessions)
    assert who is not None
    session, actor = who
    found = await console.reads_of().get_case(case_id)
    if found is None:
        return render(request, "not_found.html", 404, csrf=session.csrf, actor=actor, case_id=case_id)
    case, events = found
    now = datetime.now(UTC)
    refusal = context.pop("refusal", None)
    offered = offers(case.state, DomainActor(actor.actor, actor.role), console.rules, now)
    open_steps = [s for s in case.state.steps if f"outcome:{s.step_id}" in offered]
    waiting = [
        c
        for c in case.state.compensations
        if c.status is CompensationStatus.AWAITING_APPROVAL and f"approve:{c.request_id}" in offered
    ]
    return render(
        request,
        "case.html",
        status,
        csrf=session.csrf,
        actor=actor,
        case=case.state,
        read=case,
        clocks=views.clocks(case.state, console.rules.sla, now),
        reasons=views.severity_reasons(case),
        timeline=timeline.timeline(events),
        refusals=dict([refusal]) if refusal else {},
        unplaced=refusal[1]
        if refusal and refusal[0] not in offered
        else None,  # a form this page does not show
        now=now,
        time_left=views.time_left,
        offers=offered,
        open_steps=open_steps,
        waiting=waiting,
        currency=case_currency(case.state) or "EUR",
        root_causes=sorted(console.rules.root_causes),
        max_summary=MAX_SUMMARY_LENGTH,
        **CHOICES,
        **context,
    )
