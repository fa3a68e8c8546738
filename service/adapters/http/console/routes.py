"""The console's routes: sign in and out, the queue and the assets; the case page is case_page's."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.adapters.http.bounds import MAX_CURSOR_LENGTH, MAX_ID_LENGTH
from service.adapters.http.console import views
from service.adapters.http.console.approvals_page import approvals_routes
from service.adapters.http.console.case_page import case_routes
from service.adapters.http.console.pages import HERE, PRINTABLE, Console, expired, form, go, render, signed_in
from service.adapters.http.console.session import Sessions, clear, csrf_ok
from service.adapters.http.console.trends_page import trends_routes
from service.adapters.postgres.case_reads import CaseFilter, InvalidCursor, PostgresCaseReads
from service.app.commands import CommandStore
from service.config import ApiToken
from service.domain.compensation_limits import CompensationLimits
from service.domain.severity import Severity
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy

PAGE_SIZE = 25
BREACHING_SOON = timedelta(hours=1)
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
_STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}
_SEVERITIES = [s.value for s in Severity]


def console_router(
    reads_of: Callable[[], PostgresCaseReads],
    store_of: Callable[[], CommandStore],
    sla: SlaPolicy,
    trends: TrendPolicy,
    session_key: bytes | None = None,
    root_causes: Collection[str] = (),
    limits: CompensationLimits | None = None,
) -> APIRouter:
    console = Console(
        reads_of, store_of, sla, trends, Sessions(session_key), root_causes, limits or CompensationLimits()
    )
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
        who = signed_in(request, console.sessions)
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
            rows=[(c.state, views.next_clock(c.state, console.sla, now)) for c in cases],
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
