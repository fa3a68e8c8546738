"""The command endpoints: each turns a request into a domain command on one case, built from CASE_COMMANDS."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.adapters.http.auth import Actor, AuthenticatedRoute, Roles
from service.adapters.http.bodies import OpenBody
from service.adapters.http.bounds import (
    ETAG,
    CaseId,
    IdempotencyKey,
    IfMatch,
    RequestId,
    StepId,
    etag_of,
    version_of,
)
from service.adapters.http.case_commands import CASE_COMMANDS, CaseCommand
from service.adapters.http.errors import (
    COMMON,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    STALE,
    TOO_LARGE,
    ApiError,
    Responses,
    status_of,
)
from service.adapters.http.models import CaseView
from service.adapters.http.tracing import request_traceparent
from service.api_tokens import ApiToken
from service.app.commands import CaseNotFound, CommandResult, CommandStore, Submission, run_command
from service.app.reads import CaseRead
from service.domain.commands import CommandRules, OpenByHand
from service.domain.errors import DomainError
from service.domain.signals import Money
from service.domain.trends import TrendPolicy
from service.domain.workflow import RESOLVERS
from service.domain.workflow import Actor as DomainActor

COMMAND_ERRORS: Responses = {**COMMON, **FORBIDDEN, **CONFLICT, **TOO_LARGE}
_PATH_IDS = {"step_id": StepId, "request_id": RequestId}  # the annotation of each id a command's path names
Run = Callable[[Submission], Any]


def command_router(
    store_of: Callable[[], CommandStore], rules: CommandRules, trends: TrendPolicy
) -> APIRouter:
    on_case = {**COMMAND_ERRORS, **NOT_FOUND, **STALE, **ETAG}
    router = APIRouter(prefix="/v1/cases/{case_id}", route_class=AuthenticatedRoute, responses=on_case)
    opening = APIRouter(prefix="/v1/cases", route_class=AuthenticatedRoute, responses=COMMAND_ERRORS)

    async def run(submission: Submission) -> JSONResponse:
        try:
            result = await run_command(submission, store_of(), rules, trends)
        except CaseNotFound as e:
            raise ApiError(404, "not_found", f"no case {submission.case_id}") from e
        except DomainError as e:
            raise ApiError(status_of(e), e.code, e.detail, e.field) from e
        return answer(result)

    @opening.post(
        "",
        response_model=CaseView,
        status_code=201,
        dependencies=[Depends(Roles(RESOLVERS, "open a case by hand"))],
    )
    async def open_case(body: OpenBody, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """Open a case by hand (internal escalation; manager or owner); 409 when the customer already has an open
        case. Without `amount_at_stake` every compensation on the case waits for approval.

        An Idempotency-Key here is scoped to the actor and the customer.
        """
        stake = body.amount_at_stake
        command = OpenByHand(
            body.customer_id,
            body.severity,
            body.channel,
            body.customer_tier,
            body.reason,
            None if stake is None else Money(stake.amount, stake.currency),
        )
        return await run(Submission(command, _who(actor), "", key, traceparent=request_traceparent()))

    for entry in CASE_COMMANDS:
        roles = [Depends(Roles(entry.roles, entry.name.replace("_", " ")))] if entry.roles else []
        router.add_api_route(
            f"/{entry.path}",
            _endpoint(entry, run),
            methods=[entry.method],
            response_model=CaseView,
            name=entry.name,
            dependencies=roles,
        )

    both = APIRouter()
    both.include_router(opening)
    both.include_router(router)
    return both


def answer(result: CommandResult) -> JSONResponse:
    """201 for the case a command opened, 200 otherwise; the case as the command left it, with its ETag."""
    body = CaseView.of(CaseRead(result.state, result.signals), at=result.at).model_dump(mode="json")
    status = 201 if result.opened else 200
    return JSONResponse(body, status, headers={"ETag": etag_of(result.state.version)})


def _endpoint(entry: CaseCommand, run: Run) -> Callable[..., Any]:
    """The endpoint of one entry: the case id, the path's other ids, the body if it has one, the actor, an
    Idempotency-Key and If-Match (a malformed one is refused naming it)."""

    async def endpoint(
        case_id: str, actor: ApiToken, key: str | None = None, if_match: str | None = None, **given: Any
    ) -> Any:
        try:
            expected = version_of(if_match)
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e), "If-Match") from e
        body = given.pop("body", None)
        command = entry.make(body, given)
        submission = Submission(command, _who(actor), case_id, key, expected, request_traceparent())
        return await run(submission)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("case_id", keyword, annotation=CaseId),
        *(inspect.Parameter(name, keyword, annotation=_PATH_IDS[name]) for name in entry.ids),
        *([inspect.Parameter("body", keyword, annotation=entry.body)] if entry.body else []),
        inspect.Parameter("actor", keyword, annotation=Actor),
        inspect.Parameter("key", keyword, annotation=IdempotencyKey, default=None),
        inspect.Parameter("if_match", keyword, annotation=IfMatch, default=None),
    ]
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = entry.name
    endpoint.__doc__ = entry.doc
    return endpoint


def _who(actor: ApiToken) -> DomainActor:
    return DomainActor(actor.actor, actor.role)
