"""`POST /v1/sessions/revoke`: an owner ends every console session of an actor at once (a token handed in, a
leaver, a lost laptop). Rotating the token in RECOVERY_API_TOKENS then keeps them out."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from service.adapters.http.auth import Actor, AuthenticatedRoute, Roles
from service.adapters.http.bounds import MAX_OWNER_LENGTH
from service.adapters.http.errors import COMMON, FORBIDDEN, TOO_LARGE
from service.app.ports import ConsoleSessionStore
from service.domain.bounds import NO_CONTROL_CHARACTERS


class RevokeSessionsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(
        min_length=1,
        max_length=MAX_OWNER_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="The actor (as RECOVERY_API_TOKENS names it) whose console sessions end.",
    )


class SessionsRevoked(BaseModel):
    actor: str = Field(description="The actor whose sessions ended.")
    revoked: int = Field(
        description="How many sessions it had; each is refused from now on, on every replica."
    )


def sessions_router(sessions_of: Callable[[], ConsoleSessionStore]) -> APIRouter:
    router = APIRouter(
        prefix="/v1/sessions",
        route_class=AuthenticatedRoute,
        responses={**COMMON, **FORBIDDEN, **TOO_LARGE},
        dependencies=[Depends(Roles({"owner"}, "end console sessions"))],
    )

    @router.post("/revoke", response_model=SessionsRevoked)
    async def revoke_sessions(body: RevokeSessionsBody, _: Actor) -> SessionsRevoked:
        """End every console session of the actor now; its API token works on until removed from the settings."""
        revoked = await sessions_of().end_all_of(body.actor)
        return SessionsRevoked(actor=body.actor, revoked=revoked)

    return router
