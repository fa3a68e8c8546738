"""The console's routes: sign in and out, the queue and the assets; the case page is case_page's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.adapters.http.bounds import MAX_CURSOR_LENGTH
from service.adapters.http.console import views
from service.adapters.http.console.approvals_page import approvals_routes
from service.adapters.http.console.case_page import case_routes
from service.adapters.http.console.pages import HERE, PRINTABLE, Console, expired, form, go, render, signed_in
from service.adapters.http.console.session import Session, Sessions, csrf_ok
from service.adapters.http.console.trends_page import trends_routes
from service.adapters.http.token_gate import TokenGate, TooManyFailures, client_of
from service.api_tokens import ApiToken
from service.app.commands import CommandStore
from service.app.ports import SessionTimeouts
from service.app.reads import CaseFilter, CaseReads, InvalidCursor
from service.domain.bounds import MAX_ID_LENGTH
from service.domain.commands import CommandRules
from service.domain.severity import Severity
from service.domain.trends import TrendPolicy

PAGE_SIZE = 25
BREACHING_SOON = timedelta(hours=1)
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
_STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}
_SEVERITIES = [s.value for s in Severity]


def console_router(
    reads_of: Callable[[], CaseReads],
    store_of: Callable[[], CommandStore],
    rules: CommandRules,
    trends: TrendPolicy,
    sessions: Sessions,
) -> APIRouter:
    console = Console(reads_of, store_of, rules, trends, sessions)
    router = APIRouter(prefix="/console", include_in_schema=False)
    _sign_in_routes(router, console)
    _queue_routes(router, console)
    case_routes(router, console)
    approvals_routes(router, console)
    trends_routes(router, console)

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
        return go("/console/queue" if await signed_in(request, sessions) else "/console/sign-in")

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        form_session = sessions.form(request) or sessions.new_form()
        response = _sign_in_form(request, 200, form_session)
        sessions.write_form(response, form_session)
        return response

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await form(request)
        form_session = sessions.form(request)
        if not csrf_ok(form_session, fields.get("csrf")):
            return expired(request)
        gate: TokenGate = request.app.state.gate
        token = fields.get("token", "").strip()
        try:
            actor = gate.actor_of(client_of(request), token, "console")
        except TooManyFailures as e:
            error = f"Too many failed sign-ins from your address: try again in {e.retry_after} seconds."
            refused = _sign_in_form(request, 429, form_session, error)
            refused.headers["Retry-After"] = str(e.retry_after)
            return refused
        if actor is None:
            error = "That token is not one this service knows. Check it and try again."
            return _sign_in_form(request, 401, form_session, error)
        response = go("/console/queue")
        await sessions.start(response, token, actor)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        fields = await form(request)
        who = await signed_in(request, sessions)
        if who is not None and not csrf_ok(who[0], fields.get("csrf")):
            return expired(request)
        response = go("/console/sign-in?signed_out=1")
        await sessions.end(request, response)
        return response

    def _sign_in_form(
        request: Request, status: int, session: Session | None, error: str | None = None
    ) -> Response:
        rule = _session_rule(sessions.timeouts)
        csrf = "" if session is None else session.csrf
        return render(request, "sign_in.html", status, csrf=csrf, actor=None, error=error, session_rule=rule)


def _session_rule(timeouts: SessionTimeouts) -> str:
    return (
        f"A session ends after {_duration(timeouts.idle)} without use, and {_duration(timeouts.lifetime)}"
        " after sign-in at the latest."
    )


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 60 or minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, as the form sends them (a query string the refresh script sends again)."""

    mine: bool = False
    unassigned: bool = False
    breaching: bool = False  # the next deadline within BREACHING_SOON, or past
    severity: Annotated[str, Query(max_length=20)] = ""
    customer: Annotated[str, Query(max_length=MAX_ID_LENGTH, pattern=PRINTABLE.pattern)] = ""

    def where(self, actor: ApiToken, now: datetime) -> CaseFilter:
        return CaseFilter(
            self.customer.strip() or None,
            None,  # the queue is of open cases
            self.chosen_severity,
            actor.actor if self.mine else None,
            unassigned=self.unassigned and not self.mine,
            next_deadline_before=now + BREACHING_SOON if self.breaching else None,
        )

    @property
    def chosen_severity(self) -> str | None:
        return self.severity if self.severity in _SEVERITIES else None

    def query(self) -> str:
        """The filters as a query string, for the paging links and the refresh."""
        flags = {"mine": self.mine, "unassigned": self.unassigned, "breaching": self.breaching}
        fields = {k: "true" for k, on in flags.items() if on}
        return urlencode(
            {**fields, "severity": self.chosen_severity or "", "customer": self.customer.strip()}
        )


def _queue_routes(router: APIRouter, console: Console) -> None:
    async def rows(request: Request, filters: QueueFilters, cursor: str | None, template: str) -> Response:
        who = await signed_in(request, console.sessions)
        if who is None:
            return go("/console/sign-in")
        session, actor = who
        now = datetime.now(UTC)
        where = filters.where(actor, now)
        error = None
        try:
            cases, next_cursor = await console.reads_of().queue(where, PAGE_SIZE, cursor)
        except InvalidCursor:
            error = "That page link is not one this console made: showing the first page."
            cursor = None
            cases, next_cursor = await console.reads_of().queue(where, PAGE_SIZE, cursor)
        return render(
            request,
            template,
            csrf=session.csrf,
            actor=actor,
            rows=[(c.state, views.next_clock(c.state, console.rules.sla, now)) for c in cases],
            now=now,
            filters=filters,
            severities=_SEVERITIES,
            next_cursor=next_cursor,
            cursor=cursor,
            error=error,
            time_left=views.time_left,
        )

    @router.get("/queue")
    async def queue(
        request: Request, filters: Annotated[QueueFilters, Depends()], cursor: Cursor = None
    ) -> Response:
        return await rows(request, filters, cursor, "queue.html")

    @router.get("/queue/rows")
    async def queue_rows(
        request: Request, filters: Annotated[QueueFilters, Depends()], cursor: Cursor = None
    ) -> Response:
        """The queue's table alone, for the page's script to swap in without a reload."""
        return await rows(request, filters, cursor, "queue_rows.html")
