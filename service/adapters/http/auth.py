"""Authentication first: a /v1 request's token and role are checked before its body is read or validated."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Coroutine
from decimal import Decimal
from typing import Annotated, Any, NoReturn

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.adapters.http.bounds import MAX_BODY_BYTES
from service.adapters.http.errors import ApiError
from service.adapters.http.token_gate import TokenGate, TooManyFailures, client_of
from service.api_tokens import ApiToken

# Documents the scheme in /openapi.json; the check itself is AuthenticatedRoute's, so it never errors here.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from RECOVERY_API_TOKENS; it names the actor and the role (agent, manager, owner).",
)


def _token_of(request: Request) -> ApiToken:
    gate: TokenGate = request.app.state.gate
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        actor = gate.actor_of(client_of(request), token if scheme.lower() == "bearer" else "", "api")
    except TooManyFailures as e:
        raise ApiError(429, "too_many_failures", str(e), headers={"Retry-After": str(e.retry_after)}) from e
    if actor is None:
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token> with a known token")
    return actor


def authenticated(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiToken:
    """The actor and role behind the request's bearer token (already checked by the route)."""
    actor = getattr(request.state, "actor", None)
    return actor if isinstance(actor, ApiToken) else _token_of(request)


Actor = Annotated[ApiToken, Depends(authenticated)]


class Roles:
    """A route's marker: only these roles may call it. AuthenticatedRoute enforces it before the body is read."""

    def __init__(self, allowed: Collection[str], action: str) -> None:
        self.allowed, self.action = frozenset(allowed), action

    def check(self, actor: ApiToken) -> None:
        if actor.role not in self.allowed:
            allowed = " or ".join(sorted(self.allowed))
            raise ApiError(403, "not_allowed", f"role {actor.role} may not {self.action} ({allowed} may)")

    def __call__(self) -> None:
        return None


class AuthenticatedRoute(APIRoute):
    """Checks the token (401) and the route's Roles (403) first, then reads a bounded body as strict JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        roles = [d.call for d in self.dependant.dependencies if isinstance(d.call, Roles)]

        async def authenticate_first(request: Request) -> Response:
            actor = _token_of(request)
            for role in roles:
                role.check(actor)
            request.state.actor = actor
            strict = StrictJsonRequest(request.scope, request.receive)
            await strict.body()
            return await handler(strict)

        return authenticate_first


class StrictJsonRequest(Request):
    """A body of at most MAX_BODY_BYTES, parsed as UTF-8 JSON with exact decimals and no NaN or Infinity."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(
                        413, "body_too_large", f"a request body may have at most {MAX_BODY_BYTES} bytes"
                    )
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse)
            except (
                ValueError,
                RecursionError,
            ) as e:  # invalid UTF-8, NaN, digits beyond int's limit, nesting
                if isinstance(e, json.JSONDecodeError):
                    raise
                raise json.JSONDecodeError(f"{type(e).__name__}: {e}"[:200], "", 0) from e
        return self._json


def _refuse(constant: str) -> NoReturn:
    raise json.JSONDecodeError(f"{constant} is not a JSON number", constant, 0)
