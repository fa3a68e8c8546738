"""The command endpoints: each turns a request into a domain decision on one case."""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.adapters.http.auth import Actor, AuthenticatedRoute, Roles
from service.adapters.http.bodies import (
    AssignBody,
    CompensationBody,
    FollowUpBody,
    NoteBody,
    OpenBody,
    OutcomeBody,
    PauseBody,
    ReopenBody,
    ResolveBody,
    StepBody,
    SummaryBody,
)
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
from service.adapters.postgres.case_reads import CaseRead
from service.app.commands import (
    CaseNotFound,
    Command,
    CommandStore,
    DecideWithHistory,
    DecideWithLatest,
    run_command,
)
from service.domain.case import CaseIds, CaseState
from service.domain.compensation import (
    CompensationHistory,
    compensation_request_id,
    decide_approve_compensation,
    decide_request_compensation,
)
from service.domain.compensation_limits import CompensationLimits
from service.domain.errors import DomainError
from service.domain.events import CaseEvent
from service.domain.pauses import decide_pause, decide_resume
from service.domain.signals import Money
from service.domain.sla import SlaPolicy
from service.domain.summary import decide_edit_summary
from service.domain.trends import TrendPolicy
from service.domain.workflow import (
    RESOLVERS,
    decide_acknowledge,
    decide_add_note,
    decide_add_step,
    decide_assign,
    decide_follow_up,
    decide_open_by_hand,
    decide_record_step,
    decide_reopen,
    decide_resolve,
)
from service.domain.workflow import (
    Actor as DomainActor,
)

COMMAND_ERRORS: Responses = {**COMMON, **FORBIDDEN, **CONFLICT, **TOO_LARGE}
# the case version the current request's If-Match names: set by every case command's dependency, before it runs
_EXPECTED_VERSION: ContextVar[int | None] = ContextVar("expected_version", default=None)


async def if_match(header: IfMatch = None) -> None:
    """Every command on a case takes If-Match (the case's ETag); a malformed one is refused naming it."""
    try:
        _EXPECTED_VERSION.set(version_of(header))
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e), "If-Match") from e


def command_router(
    store_of: Callable[[], CommandStore],
    sla: SlaPolicy,
    root_causes: Collection[str],
    limits: CompensationLimits,
    trends: TrendPolicy,
    case_ids: CaseIds,
) -> APIRouter:
    on_case = {**COMMAND_ERRORS, **NOT_FOUND, **STALE, **ETAG}
    router = APIRouter(
        prefix="/v1/cases/{case_id}",
        route_class=AuthenticatedRoute,
        responses=on_case,
        dependencies=[Depends(if_match)],
    )
    opening = APIRouter(prefix="/v1/cases", route_class=AuthenticatedRoute, responses=COMMAND_ERRORS)
    resolvers_only = [Depends(Roles(RESOLVERS, "resolve cases or approve compensation"))]
    openers_only = [Depends(Roles(RESOLVERS, "open a case by hand"))]

    async def run(command: Command) -> JSONResponse:
        command = replace(command, traceparent=request_traceparent())
        try:
            answer = await run_command(command, store_of(), sla, _render)
        except CaseNotFound as e:
            raise ApiError(404, "not_found", f"no case {command.case_id}") from e
        except DomainError as e:
            raise ApiError(status_of(e), e.code, e.detail, e.field) from e
        version = answer.body.get("version")
        headers = {"ETag": etag_of(version)} if isinstance(version, int) else None
        return JSONResponse(answer.body, answer.status, headers=headers)

    def on(case_id: str, name: str, actor: Any, key: str | None, decide: Any) -> Command:
        expected = _EXPECTED_VERSION.get()
        return Command(case_id, name, actor.actor, key, decide, trends, expected_version=expected)

    def on_latest(case_id: str, name: str, actor: Any, key: str | None, decide: DecideWithLatest) -> Command:
        return replace(on(case_id, name, actor, key, lambda s, now: []), with_latest=decide)

    def on_history(
        case_id: str, name: str, actor: Any, key: str | None, decide: DecideWithHistory
    ) -> Command:
        return replace(on(case_id, name, actor, key, lambda s, now: []), with_history=decide)

    def who(actor: Any) -> DomainActor:
        return DomainActor(actor.actor, actor.role)

    @opening.post("", response_model=CaseView, status_code=201, dependencies=openers_only)
    async def open_case(body: OpenBody, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """Open a case by hand (internal escalation; manager or owner); 409 when the customer already has an open
        case. Without `amount_at_stake` every compensation on the case waits for approval.

        An Idempotency-Key here is scoped to the actor and the customer.
        """

        def opens(latest: CaseState | None, now: datetime) -> list[CaseEvent]:
            return decide_open_by_hand(
                latest,
                body.customer_id,
                body.severity,
                body.channel,
                body.customer_tier,
                body.reason,
                who(actor),
                sla,
                now,
                case_ids,
                None if stake is None else Money(stake.amount, stake.currency),
            )

        stake = body.amount_at_stake
        return await run(
            Command("", "open", actor.actor, key, lambda s, now: [], trends, body.customer_id, opens)
        )

    @router.post("/assign", response_model=CaseView)
    async def assign(
        case_id: CaseId, body: AssignBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Set the owner."""
        return await run(
            on(case_id, "assign", actor, key, lambda s, now: decide_assign(s, body.owner, who(actor), now))
        )

    @router.post("/acknowledge", response_model=CaseView)
    async def acknowledge(case_id: CaseId, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """Record the first response to the customer: it stops the first-response clock."""
        return await run(
            on(case_id, "acknowledge", actor, key, lambda s, now: decide_acknowledge(s, who(actor), now))
        )

    @router.post("/steps", response_model=CaseView)
    async def add_step(
        case_id: CaseId, body: StepBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Add a recovery step; it is numbered step-1, step-2, … on its case."""
        return await run(
            on(case_id, "add_step", actor, key, lambda s, now: decide_add_step(s, body.kind, who(actor), now))
        )

    @router.post("/steps/{step_id}/outcome", response_model=CaseView)
    async def record_step(
        case_id: CaseId, step_id: StepId, body: OutcomeBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """End a step completed, skipped or failed, with notes. A completed call or email is the first response."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_record_step(s, step_id, body.outcome, body.notes, who(actor), now)

        return await run(on(case_id, f"step_outcome:{step_id}", actor, key, decide))

    @router.post("/resolve", response_model=CaseView, dependencies=resolvers_only)
    async def resolve(
        case_id: CaseId, body: ResolveBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Resolve (manager or owner) with a resolution type, a root-cause tag and a prevention action."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_resolve(
                s,
                body.resolution_type,
                body.root_cause,
                body.prevention_action,
                who(actor),
                root_causes,
                now,
                sla=sla,
            )

        return await run(on(case_id, "resolve", actor, key, decide))

    @router.post("/compensations", response_model=CaseView)
    async def request_compensation(
        case_id: CaseId, body: CompensationBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Request a refund, credit or comped service; the case then shows it with billing's `request_id`.

        The `request_id` is unique across all cases: a uuid5 of (case, actor, Idempotency-Key), or of (case, the
        request's number on the case) without a key. It goes to billing at once when the actor's limit covers it
        plus what the actor already granted on this case without approval (failed ones not counted), and the
        case's total granted stays within 1.5x the amount at stake (a stake of 0: every request waits);
        otherwise it waits for a manager's or owner's approval and `needs_approval` says why. A case has one
        currency: its amount at stake's, else its first compensation's (another one: 422 naming `currency`).
        """

        def decide(s: CaseState, history: CompensationHistory, now: datetime) -> list[CaseEvent]:
            request_id = compensation_request_id(s.case_id, actor.actor, key, len(s.compensations) + 1)
            return decide_request_compensation(
                s,
                request_id,
                body.kind,
                body.amount,
                body.currency,
                body.reason,
                who(actor),
                limits,
                history,
                now,
            )

        return await run(on_history(case_id, "request_compensation", actor, key, decide))

    @router.post("/compensations/{request_id}/approve", response_model=CaseView, dependencies=resolvers_only)
    async def approve_compensation(
        case_id: CaseId, request_id: RequestId, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Approve a waiting compensation (manager within their limit, or owner): then it goes to billing.

        403 for the one who requested it (four eyes, whatever their role); 409 while the case is closed.
        """

        def decide(s: CaseState, history: CompensationHistory, now: datetime) -> list[CaseEvent]:
            return decide_approve_compensation(s, request_id, who(actor), limits, history, now)

        return await run(on_history(case_id, f"approve:{request_id}", actor, key, decide))

    @router.post("/follow-up", response_model=CaseView)
    async def follow_up(
        case_id: CaseId, body: FollowUpBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Record the follow-up: satisfied closes the case, not satisfied reopens it.

        409 when not satisfied and the customer has a newer case: only their latest case reopens.
        """

        def decide(s: CaseState, latest: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_follow_up(s, latest, body.satisfied, body.notes, who(actor), sla, now)

        return await run(on_latest(case_id, "follow_up", actor, key, decide))

    @router.post("/reopen", response_model=CaseView)
    async def reopen(
        case_id: CaseId, body: ReopenBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Reopen a resolved or closed case with a reason; the resolution clock restarts now.

        409 when the customer has a newer case: only their latest case reopens.
        """

        def decide(s: CaseState, latest: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_reopen(s, latest, body.reason, who(actor), sla, now)

        return await run(on_latest(case_id, "reopen", actor, key, decide))

    @router.post("/notes", response_model=CaseView)
    async def add_note(
        case_id: CaseId, body: NoteBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Add an internal note for staff, on a case in any status: it is in the case's history, never published."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_add_note(s, body.note, who(actor), now)

        return await run(on(case_id, "add_note", actor, key, decide))

    @router.put("/summary", response_model=CaseView)
    async def edit_summary(
        case_id: CaseId, body: SummaryBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Rewrite the case's summary (what went wrong, in one line); any staff while the case is open, a manager
        or owner once it is resolved or closed (403 otherwise). The same summary again changes nothing."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_edit_summary(s, body.summary, who(actor), now)

        return await run(on(case_id, "edit_summary", actor, key, decide))

    @router.post("/pause", response_model=CaseView)
    async def pause(
        case_id: CaseId, body: PauseBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Pause an open case: awaiting_customer, awaiting_parts or awaiting_third_party, optionally `until`.

        The clocks that honour pauses stop; at the resume each gets back the open time the pause took. It
        resumes by itself at `until` or when the reason's budget for the case runs out, whichever is first;
        a signal from the customer ends an awaiting_customer pause. 409 when the case is not open, is already
        paused or has spent that reason's budget; 422 for an `until` not in the future.
        """

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_pause(s, who(actor), body.reason, body.until, sla, now)

        return await run(on(case_id, "pause", actor, key, decide))

    @router.post("/resume", response_model=CaseView)
    async def resume(case_id: CaseId, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """End the case's pause; its paused clocks go on with the open time they had left. 409 when not paused."""
        return await run(
            on(case_id, "resume", actor, key, lambda s, now: decide_resume(s, who(actor), sla, now))
        )

    both = APIRouter()
    both.include_router(opening)
    both.include_router(router)
    return both


def _render(state: CaseState, signals: list[Any]) -> dict[str, Any]:
    return CaseView.of(CaseRead(state, signals)).model_dump(mode="json")
