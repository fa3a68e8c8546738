"""The case page and its actions: assign and acknowledge, each decided on the version the form was filled in on.

Actions run the same use case (run_command) with the same deciders as the API's command router, never an
HTTP call to the API, so the console can never do what the API refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from service.adapters.http.bounds import MAX_ID_LENGTH, MAX_OWNER_LENGTH
from service.adapters.http.console import views
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
from service.app.commands import CaseNotFound, Command, Decide, run_command
from service.domain.case import CaseState
from service.domain.errors import DomainError, InvalidValue, WrongState
from service.domain.events import CaseEvent
from service.domain.workflow import Actor as DomainActor
from service.domain.workflow import decide_acknowledge, decide_assign

_DONE = {"assigned": "Owner set.", "acknowledged": "First response recorded: that clock has stopped."}


class StaleVersion(WrongState):
    """The form was decided on an older version of the case than the stored one (If-Match for forms)."""

    code = "stale_version"


def if_match(version: int, decide: Decide) -> Decide:
    """Decide only on the version the form was filled in on; checked in the command's own transaction."""

    def checked(state: CaseState, now: datetime) -> list[CaseEvent]:
        if state.version != version:
            raise StaleVersion(
                f"This case changed since you loaded it (you saw version {version}, it is now at version"
                f" {state.version}). Reload the page to see what changed, then try again.",
                "version",
            )
        return decide(state, now)

    return checked


CaseIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE.pattern)]


def case_routes(router: APIRouter, console: Console) -> None:
    @router.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: CaseIdPath, done: str = "") -> Response:
        who = signed_in(request, console.sessions)
        if who is None:
            return go("/console/sign-in")
        return await _case(request, console, case_id, 200, done=_DONE.get(done))

    @router.post("/cases/{case_id}/assign")
    async def assign(request: Request, case_id: CaseIdPath) -> Response:
        def decide(fields: dict[str, str], actor: DomainActor) -> Decide:
            owner = fields.get("owner", "").strip()
            if len(owner) > MAX_OWNER_LENGTH or not PRINTABLE.match(owner):
                raise InvalidValue(
                    f"owner must be printable text of at most {MAX_OWNER_LENGTH} characters", "owner"
                )
            return lambda s, now: decide_assign(s, owner, actor, now)

        return await _act(request, console, case_id, "assign", decide, "assigned")

    @router.post("/cases/{case_id}/acknowledge")
    async def acknowledge(request: Request, case_id: CaseIdPath) -> Response:
        def decide(_: dict[str, str], actor: DomainActor) -> Decide:
            return lambda s, now: decide_acknowledge(s, actor, now)

        return await _act(request, console, case_id, "acknowledge", decide, "acknowledged")


async def _act(
    request: Request,
    console: Console,
    case_id: str,
    name: str,
    decider: Callable[[dict[str, str], DomainActor], Decide],
    done: str,
) -> Response:
    """Run one action as the API runs its command; a refusal is shown next to the form and changes nothing."""
    try:
        fields = await form(request)
    except TooLarge as e:
        return HTMLResponse(str(e), 413)
    who = signed_in(request, console.sessions)
    if who is None:
        return go("/console/sign-in")
    session, actor = who
    if not csrf_ok(session, fields.get("csrf")):
        return expired(request)
    version = fields.get("version", "")
    if not version.isdigit() or len(version) > 18:
        return await _case(
            request, console, case_id, 422, refusal=(name, "The form had no case version: reload.")
        )
    try:
        decide = if_match(int(version), decider(fields, DomainActor(actor.actor, actor.role)))
        command = Command(case_id, name, actor.actor, None, decide, console.trends)
        await run_command(command, console.store_of(), console.sla, lambda s, signals: {})
    except CaseNotFound:
        return await _case(request, console, case_id, 404)
    except DomainError as e:
        return await _case(request, console, case_id, status_of(e), refusal=(name, e.detail))
    return go(f"/console/cases/{case_id}?done={done}")


async def _case(request: Request, console: Console, case_id: str, status: int, **context: Any) -> Response:
    who = signed_in(request, console.sessions)
    assert who is not None
    session, actor = who
    found = await console.reads_of().get_case(case_id)
    if found is None:
        return render(request, "not_found.html", 404, csrf=session.csrf, actor=actor, case_id=case_id)
    case, events = found
    now = datetime.now(UTC)
    refusal = context.pop("refusal", None)
    return render(
        request,
        "case.html",
        status,
        csrf=session.csrf,
        actor=actor,
        case=case.state,
        read=case,
        clocks=views.clocks(case.state, console.sla, now),
        reasons=views.severity_reasons(case),
        timeline=views.timeline(events),
        refusals=dict([refusal]) if refusal else {},
        now=now,
        time_left=views.time_left,
        **context,
    )
