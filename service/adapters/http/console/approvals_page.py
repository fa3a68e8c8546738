"""Approvals: every compensation waiting for a manager's or owner's approval, across cases, approved from here.

Approving runs the same decider as the case page and the API (four eyes, the approver's limit, a closed case).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.adapters.http.bounds import MAX_CURSOR_LENGTH
from service.adapters.http.case_commands import CASE_COMMANDS
from service.adapters.http.console.case_page import Id, act
from service.adapters.http.console.pages import Console, go, render, signed_in
from service.app.reads import InvalidCursor
from service.domain.case import CompensationStatus
from service.domain.workflow import RESOLVERS

APPROVE = next(entry for entry in CASE_COMMANDS if entry.name == "approve_compensation")
PAGE_SIZE = 25  # cases per page; each shows every compensation of it that waits
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


def approvals_routes(router: APIRouter, console: Console) -> None:
    @router.get("/approvals")
    async def approvals(request: Request, cursor: Cursor = None, done: str = "") -> Response:
        if await signed_in(request, console.sessions) is None:
            return go("/console/sign-in")
        notice = "Compensation approved: it goes to billing." if done == "approved" else None
        return await _page(request, console, cursor, 200, done=notice)

    @router.post("/approvals/{case_id}/{request_id}")
    async def approve(request: Request, case_id: Id, request_id: Id) -> Response:
        async def refused(status: int, key: str, reason: str) -> Response:
            return await _page(request, console, None, status, refusal=(key, reason))

        ids = {"request_id": request_id}
        return await act(
            request, console, case_id, APPROVE.form_key(ids), APPROVE, ids, refused, "/console/approvals?done=approved"
        )


async def _page(
    request: Request, console: Console, cursor: str | None, status: int, **context: Any
) -> Response:
    who = await signed_in(request, console.sessions)
    assert who is not None
    session, actor = who
    if actor.role not in RESOLVERS:
        message = (
            f"Approvals are not for your role ({actor.role}): a manager or an owner approves compensation."
        )
        return render(request, "approvals.html", 403, csrf=session.csrf, actor=actor, not_for_role=message)
    error = None
    try:
        cases, next_cursor = await console.reads_of().awaiting_approval(PAGE_SIZE, cursor)
    except InvalidCursor:
        error = "That page link is not one this console made: showing the first page."
        cases, next_cursor = await console.reads_of().awaiting_approval(PAGE_SIZE, None)
    rows = [
        (case, c)
        for case in cases
        for c in case.compensations
        if c.status is CompensationStatus.AWAITING_APPROVAL
    ]
    refusal = context.pop("refusal", None)
    return render(
        request,
        "approvals.html",
        status,
        csrf=session.csrf,
        actor=actor,
        rows=rows,
        next_cursor=next_cursor,
        paged=cursor is not None,
        error=error,
        refusals=dict([refusal]) if refusal else {},
        **context,
    )
