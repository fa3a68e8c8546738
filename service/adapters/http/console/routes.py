"""The console's routes: sign in and out, the queue and the assets; the case page is case_page's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.adapters.http.bounds import MAX_CURSOR_LENGTH, MAX_ID_LENGTH
from service.adapters.http.console import views
from service.adapters.http.console.case_page import case_routes
from service.adapters.http.console.pages import HERE, PRINTABLE, Console, expired, form, go, render, signed_in
from service.adapters.http.console.session import Sessions, clear, csrf_ok
from service.adapters.postgres.case_reads import CaseFilter, InvalidCursor, PostgresCaseReads
from service.app.commands import CommandStore
from service.config import ApiToken
from service.domain.severity import Severity
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy

PAGE_SIZE = 25
_STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}
_SEVERITIES = [s.value for s in Severity]


def console_router(
    reads_of: Callable[[], PostgresCaseReads],
    store_of: Callable[[], CommandStore],
    sla: SlaPolicy,
    trends: TrendPolicy,
    session_key: bytes | None = None,
) -> APIRouter:
    console = Console(reads_of, store_of, sla, trends, Sessions(session_key))
    router = APIRouter(prefix="/console", include_in_schema=False)
    _sign_in_routes(router, console)
    _queue_routes(router, console)
    case_routes(router, console)

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
            return expired(request)
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
            return expired(request)
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
        customer: Annotated[str, Query(max_length=MAX_ID_LENGTH, pattern=PRINTABLE.pattern)] = "",
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
