"""The command endpoints: each turns a request into a domain decision on one case."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.adapters.http.api import ERRORS, Actor, ApiError
from service.adapters.http.models import CaseView, ErrorBody
from service.adapters.postgres.case_reads import CaseRead
from service.app.commands import CaseNotFound, Command, CommandStore, run_command
from service.domain.case import CaseState
from service.domain.compensation import (
    CompensationLimits,
    decide_approve_compensation,
    decide_request_compensation,
)
from service.domain.errors import DomainError, NotAllowed, WrongState
from service.domain.events import CaseEvent, CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.severity import Severity
from service.domain.signals import Channel, Tier
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.domain.workflow import (
    Actor as DomainActor,
)
from service.domain.workflow import (
    decide_acknowledge,
    decide_add_step,
    decide_assign,
    decide_follow_up,
    decide_open_by_hand,
    decide_record_step,
    decide_reopen,
    decide_resolve,
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", description="Repeat it to get the first answer back without a second change."
    ),
]
COMMAND_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such case."},
    409: {"model": ErrorBody, "description": "The case is not in a state for this command."},
    422: {"model": ErrorBody, "description": "A field is missing or invalid; `field` names it."},
}


class AssignBody(BaseModel):
    owner: str = Field(min_length=1, description="Who owns the case from now on.")


class StepBody(BaseModel):
    kind: StepKind


class OutcomeBody(BaseModel):
    outcome: StepOutcome
    notes: str = Field(default="", description="What happened (staff notes).")


class ResolveBody(BaseModel):
    resolution_type: ResolutionType | None = None
    root_cause: str | None = Field(default=None, description="A tag from the configured root-cause taxonomy.")
    prevention_action: str | None = Field(
        default=None, description="What changes so it does not happen again."
    )


class CompensationBody(BaseModel):
    kind: CompensationKind
    amount: Decimal = Field(gt=0, description="In the case's currency, e.g. 120.00.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    reason: str = Field(min_length=1, description="Why, for billing and the case history.")


class FollowUpBody(BaseModel):
    satisfied: bool
    notes: str = ""


class ReopenBody(BaseModel):
    reason: str = Field(min_length=1)


class OpenBody(BaseModel):
    customer_id: str = Field(min_length=1)
    severity: Severity
    channel: Channel | None = None
    customer_tier: Tier = Tier.STANDARD
    reason: str = Field(min_length=1, description="Why staff open it (internal escalation).")


def command_router(
    store_of: Callable[[], CommandStore],
    sla: SlaPolicy,
    root_causes: Collection[str],
    limits: CompensationLimits,
    trends: TrendPolicy,
) -> APIRouter:
    router = APIRouter(prefix="/v1/cases/{case_id}", responses=COMMAND_ERRORS)
    opening = APIRouter(prefix="/v1/cases", responses=COMMAND_ERRORS)

    async def run(case_id: str, name: str, actor: Any, key: str | None, decide: Any) -> JSONResponse:
        command = Command(case_id, name, actor.actor, key, decide, trends)
        try:
            answer = await run_command(command, store_of(), sla, _render)
        except CaseNotFound as e:
            raise ApiError(404, "not_found", f"no case {case_id}") from e
        except DomainError as e:
            raise ApiError(_status(e), e.code, e.detail, e.field) from e
        return JSONResponse(answer.body, answer.status)

    def who(actor: Any) -> DomainActor:
        return DomainActor(actor.actor, actor.role)

    @opening.post("", response_model=CaseView, status_code=201)
    async def open_case(body: OpenBody, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """Open a case by hand (internal escalation); 409 when the customer already has an open case."""

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
            )

        command = Command("", "open", actor.actor, key, lambda s, now: [], trends, body.customer_id, opens)
        try:
            answer = await run_command(command, store_of(), sla, _render)
        except DomainError as e:
            raise ApiError(_status(e), e.code, e.detail, e.field) from e
        return JSONResponse(answer.body, answer.status)

    @router.post("/assign", response_model=CaseView)
    async def assign(
        case_id: str, body: AssignBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Set the owner."""
        return await run(
            case_id, "assign", actor, key, lambda s, now: decide_assign(s, body.owner, who(actor), now)
        )

    @router.post("/acknowledge", response_model=CaseView)
    async def acknowledge(case_id: str, actor: Actor, key: IdempotencyKey = None) -> JSONResponse:
        """Record the first response to the customer: it stops the first-response clock."""
        return await run(
            case_id, "acknowledge", actor, key, lambda s, now: decide_acknowledge(s, who(actor), now)
        )

    @router.post("/steps", response_model=CaseView)
    async def add_step(
        case_id: str, body: StepBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Add a recovery step; it is numbered step-1, step-2, … on its case."""
        return await run(
            case_id, "add_step", actor, key, lambda s, now: decide_add_step(s, body.kind, who(actor), now)
        )

    @router.post("/steps/{step_id}/outcome", response_model=CaseView)
    async def record_step(
        case_id: str, step_id: str, body: OutcomeBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """End a step completed, skipped or failed, with notes. A completed call or email is the first response."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_record_step(s, step_id, body.outcome, body.notes, who(actor), now)

        return await run(case_id, f"step_outcome:{step_id}", actor, key, decide)

    @router.post("/resolve", response_model=CaseView)
    async def resolve(
        case_id: str, body: ResolveBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Resolve (manager or owner) with a resolution type, a root-cause tag and a prevention action."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_resolve(
                s, body.resolution_type, body.root_cause, body.prevention_action, who(actor), root_causes, now
            )

        return await run(case_id, "resolve", actor, key, decide)

    @router.post("/compensations", response_model=CaseView)
    async def request_compensation(
        case_id: str, body: CompensationBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Request a refund, credit or comped service. The Idempotency-Key becomes billing's request_id.

        Within the actor's limit (and 1.5x the amount at stake) it goes to billing at once; otherwise it waits
        for a manager's or owner's approval.
        """

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            request_id = key or f"{s.case_id}/compensation-{len(s.compensations) + 1}"
            return decide_request_compensation(
                s, request_id, body.kind, body.amount, body.currency, body.reason, who(actor), limits, now
            )

        return await run(case_id, "request_compensation", actor, key, decide)

    @router.post("/compensations/{request_id}/approve", response_model=CaseView)
    async def approve_compensation(
        case_id: str, request_id: str, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Approve a waiting compensation (manager within their limit, or owner): then it goes to billing."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_approve_compensation(s, request_id, who(actor), limits, now)

        return await run(case_id, f"approve:{request_id}", actor, key, decide)

    @router.post("/follow-up", response_model=CaseView)
    async def follow_up(
        case_id: str, body: FollowUpBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Record the follow-up: satisfied closes the case, not satisfied reopens it."""

        def decide(s: CaseState, now: datetime) -> list[CaseEvent]:
            return decide_follow_up(s, body.satisfied, body.notes, who(actor), sla, now)

        return await run(case_id, "follow_up", actor, key, decide)

    @router.post("/reopen", response_model=CaseView)
    async def reopen(
        case_id: str, body: ReopenBody, actor: Actor, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Reopen a resolved or closed case with a reason; the resolution clock restarts now."""
        return await run(
            case_id, "reopen", actor, key, lambda s, now: decide_reopen(s, body.reason, who(actor), sla, now)
        )

    both = APIRouter()
    both.include_router(opening)
    both.include_router(router)
    return both


def _render(state: CaseState, signals: list[Any]) -> dict[str, Any]:
    return CaseView.of(CaseRead(state, signals)).model_dump(mode="json")


def _status(error: DomainError) -> int:
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, WrongState):
        return 409
    return 422
