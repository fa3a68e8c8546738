"""`/v1/incidents`: outages seen as one. Read them; a manager or owner declares one by hand for a scope,
confirms a rule's proposal, or dismisses a false alarm."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from service.adapters.http.auth import Actor, AuthenticatedRoute
from service.adapters.http.bodies import CommandBody
from service.adapters.http.errors import COMMON, ApiError, Responses, refusal, status_of
from service.adapters.http.models import EventView
from service.app.incidents import IncidentNotFound, IncidentStore, run_incident_command
from service.app.reads import CaseReads
from service.domain.bounds import MAX_ID_LENGTH, NO_CONTROL_CHARACTERS
from service.domain.errors import DomainError
from service.domain.incident_commands import (
    ConfirmIncident,
    DeclareIncident,
    DismissIncident,
    IncidentCommand,
)
from service.domain.incidents import IncidentPolicy, IncidentState, IncidentStatus
from service.domain.workflow import Actor as DomainActor

IncidentId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS, description="The incident id.")
]
ScopeValue = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS)]


class DetectionView(BaseModel):
    rule: str = Field(description="The surge rule that fired (RECOVERY_INCIDENT_POLICY_FILE).")
    customers: int = Field(description="Distinct customers of the scope in the window when it crossed.")
    baseline: float | None = Field(description="Mean distinct customers per window before; null: no history.")
    min_customers: int
    baseline_multiple: float
    window_minutes: int
    window_start: datetime
    window_end: datetime


class IncidentView(BaseModel):
    incident_id: str
    status: Literal["proposed", "declared", "dismissed", "resolved", "closed"]
    scope: dict[str, str] = Field(description="What failed where: service, region, category, kind.")
    opened_at: datetime
    detection: DetectionView | None = Field(description="Why a rule fired; null when a manager declared it.")
    declared_at: datetime | None
    declared_by: str | None = Field(description="The manager who declared or confirmed it; null: the rule did.")
    dismissed_at: datetime | None = None
    dismissed_by: str | None = None
    reason: str | None = Field(default=None, description="Why it was dismissed.")
    version: int

    @classmethod
    def of(cls, state: IncidentState, **more: Any) -> IncidentView:
        return cls.model_validate({**asdict(state), **more})


class IncidentDetail(IncidentView):
    cases: dict[str, int] = Field(description="The linked cases, by status.")
    history: list[EventView]


class IncidentPage(BaseModel):
    items: list[IncidentView]


class DeclareBody(CommandBody):
    scope: dict[Literal["service", "region", "category", "kind"], ScopeValue] = Field(
        min_length=1,
        description="What failed where; service or region is required, e.g. {\"service\": \"broadband\","
        " \"region\": \"north-east\"}. Every later failure signal with these values links its case.",
    )


class DismissBody(CommandBody):
    reason: str = Field(min_length=1, max_length=2_048, description="Why this is not an incident.")


NOT_FOUND: Responses = {404: refusal("No such incident.")}
MANAGERS: Responses = {403: refusal("Only a manager or an owner acts on incidents.")}
CONFLICT: Responses = {
    409: refusal("The incident is dismissed, resolved or closed, or the scope has an open incident.")
}


def incidents_router(
    reads_of: Callable[[], CaseReads], store_of: Callable[[], IncidentStore], policy: IncidentPolicy
) -> APIRouter:
    router = APIRouter(prefix="/v1/incidents", route_class=AuthenticatedRoute, responses=COMMON)

    @router.get("", response_model=IncidentPage)
    async def list_incidents(
        _: Actor,
        status: Annotated[IncidentStatus | None, Query(description="Only incidents in this status.")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> IncidentPage:
        """Incidents, newest first."""
        found = await reads_of().incidents(None if status is None else status.value, limit)
        return IncidentPage(items=[IncidentView.of(s) for s in found])

    @router.get("/{incident_id}", response_model=IncidentDetail, responses=NOT_FOUND)
    async def get_incident(incident_id: IncidentId, _: Actor) -> IncidentDetail:
        """The incident, its linked cases counted by status, and its history."""
        found = await reads_of().incident(incident_id)
        if found is None:
            raise ApiError(404, "not_found", f"no incident {incident_id}")
        history = [EventView.of(e) for e in found.history]
        return IncidentDetail.model_validate({**asdict(found.state), "cases": dict(found.cases), "history": history})

    async def run(command: IncidentCommand, actor: Actor, incident_id: str | None) -> IncidentView:
        try:
            result = await run_incident_command(
                command, DomainActor(actor.actor, actor.role), incident_id, store_of(), policy
            )
        except IncidentNotFound as e:
            raise ApiError(404, "not_found", str(e)) from e
        except DomainError as e:
            raise ApiError(status_of(e), e.code, e.detail, e.field) from e
        return IncidentView.of(result.state)

    @router.post(
        "", response_model=IncidentView, status_code=201, responses={**MANAGERS, **CONFLICT}
    )
    async def declare_incident(body: DeclareBody, actor: Actor) -> IncidentView:
        """Declare an incident by hand for a scope (a manager or an owner): from now on every failure signal in
        it links its case. 409 when the scope has an open incident declared by hand."""
        return await run(DeclareIncident({str(k): v for k, v in body.scope.items()}), actor, None)

    @router.post(
        "/{incident_id}/confirm", response_model=IncidentView, responses={**NOT_FOUND, **MANAGERS, **CONFLICT}
    )
    async def confirm_incident(incident_id: IncidentId, actor: Actor) -> IncidentView:
        """Confirm a rule's proposal: it is declared, and the customers whose signals crossed it join it.
        Confirming a declared incident changes nothing."""
        return await run(ConfirmIncident(), actor, incident_id)

    @router.post(
        "/{incident_id}/dismiss", response_model=IncidentView, responses={**NOT_FOUND, **MANAGERS, **CONFLICT}
    )
    async def dismiss_incident(incident_id: IncidentId, body: DismissBody, actor: Actor) -> IncidentView:
        """Dismiss a false alarm: nothing more links to it, and its scope may open a new incident."""
        return await run(DismissIncident(body.reason), actor, incident_id)

    return router
