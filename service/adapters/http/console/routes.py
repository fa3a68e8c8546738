"""The console's routes: sign in and out, the queue, the case page and its actions.

Actions run the same use case (run_command) with the same deciders as the API's command router, never an
HTTP call to the API, so the console can never do what the API refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from service.adapters.http.bounds import MAX_CURSOR_LENGTH, MAX_ID_LENGTH, MAX_OWNER_LENGTH
from service.adapters.http.console import views
from service.adapters.http.console.pages import HERE, TooLarge, form, go, render, signed_in
from service.adapters.http.console.session import Sessions, clear, csrf_ok
from service.adapters.postgres.case_reads import CaseFilter, InvalidCursor, PostgresCaseReads
from service.app.commands import CaseNotFound, Command, CommandStore, Decide, run_command
from service.config import ApiToken
from service.domain.case import CaseState
from service.domain.errors import DomainError, MissingField, NotAllowed, WrongState
from service.domain.events import CaseEvent
from service.domain.severity import Severity
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.domain.workflow import Actor as DomainActor
from service.domain.workflow import decide_acknowledge, decide_assign

PAGE_SIZE = 25
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")
_STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}
_SEVERITIES = [s.value for s in Severity]
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


@dataclass(frozen=True)
class Console:
    reads_of: Callable[[], PostgresCaseReads]
    store_of: Callable[[], CommandStore]
    sla: SlaPolicy
    trends: TrendPolicy
    sessions: Sessions


def console_router(
    reads_of: Callable[[], PostgresCaseReads],
    store_of: Callable[[], CommandStore],
    sla: SlaPolicy,
    trends: TrendPolicy,
) -> APIRouter:
    console = Console(reads_of, store_of, sla, trends, Sessions())
    router = APIRouter(prefix="/console", include_in_schema=False)
    _sign_in_routes(router, console)
    _queue_routes(router, console)
    _case_routes(router, console)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", 404, media_type="text/plain")
        return FileResponse(_STATIC[name], headers={"Cache-Control": "max-age=300"})

    return router


def _sign_in_routes(router: APIRouter, console: Console) -> None:
    sessions = console.sessions

    @router.get("")
    async def home(request: Request) -> RedirectResponse:
        return go("/console/queue" if signed_in(request, sessions) else "/console/sign-in")

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        session = sessions.read(request) or sessions.new(None)
        response = render(request, "sign_in.html", csrf=session.csrf, actor=None)
        sessions.write(response, request, session)
        return response

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await form(request)
        session = sessions.read(request)
        if not csrf_ok(session, fields.get("csrf")):
            return _expired(request)
        assert session is not None
        tokens: dict[str, ApiToken] = request.app.state.tokens
        token = fields.get("token", "").strip()
        if token not in tokens:
            error = "That token is not one this service knows. Check it and try again."
            return render(request, "sign_in.html", 401, csrf=session.csrf, actor=None, error=error)
        response = go("/console/queue")
        sessions.write(response, request, sessions.new(token))  # a new session: a fresh CSRF token
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        fields = await form(request)
        if not csrf_ok(sessions.read(request), fields.get("csrf")):
            return _expired(request)
        response = go("/console/sign-in?signed_out=1")
        clear(response)
        return response


def _queue_routes(router: APIRouter, console: Console) -> None:
    @router.get("/queue")
    async def queue(
        request: Request,
        mine: bool = False,
        unassigned: bool = False,
        severity: Annotated[str, Query(max_length=20)] = "",
        customer: Annotated[str, Query(max_length=MAX_ID_LENGTH, pattern=_PRINTABLE.pattern)] = "",
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
    ) -> Response:
        who = signed_in(request, console.sessions)
        if who is None:
            return go("/console/sign-in")
        session, actor = who
        chosen = severity if severity in _SEVERITIES else None
        where = CaseFilter(
            customer.strip() or None,
            "open",
            chosen,
            actor.actor if mine else None,
            unassigned=unassigned and not mine,
        )
        error = None
        try:
            cases, next_cursor = await console.reads_of().list_cases(where, PAGE_SIZE, cursor)
        except InvalidCursor:
            error = "That page link is not one this console made: showing the first page."
            cases, next_cursor = await console.reads_of().list_cases(where, PAGE_SIZE, None)
        now = datetime.now(UTC)
        rows = [(c.state, views.next_clock(c.state, console.sla, now)) for c in cases]
        filters = {"mine": mine, "unassigned": unassigned, "severity": chosen, "customer": customer.strip()}
        return render(
            request,
            "queue.html",
            csrf=session.csrf,
            actor=actor,
            rows=rows,
            now=now,
            filters=filters,
            severities=_SEVERITIES,
            next_cursor=next_cursor,
            paged=cursor is not None,
            error=error,
            time_left=views.time_left,
        )


CaseIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=_PRINTABLE.pattern)]


def _case_routes(router: APIRouter, console: Console) -> None:
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
            if len(owner) > MAX_OWNER_LENGTH or not _PRINTABLE.match(owner):
                raise MissingField(f"owner must be printable text of at most {MAX_OWNER_LENGTH} characters")
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
        return _expired(request)
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
        return await _case(request, console, case_id, _status(e), refusal=(name, e.detail))
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


def _expired(request: Request) -> Response:
    message = "This form had expired or was not sent by the console. Reload the page and try again."
    return render(request, "refused.html", 403, csrf="", actor=None, message=message)


def _status(error: DomainError) -> int:
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, WrongState):
        return 409
    return 422
