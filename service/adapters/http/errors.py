"""One error shape for every refusal: {"error", "detail", "field"}, whatever raised it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.adapters.http.models import ErrorBody
from service.adapters.postgres.errors import TRANSIENT
from service.domain.errors import ConcurrencyConflict, DomainError, NotAllowed, StaleVersion, WrongState


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field
        self.headers = dict(headers or {})


Responses = dict[int | str, dict[str, Any]]


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain refusal: the role may not (403), a stale If-Match (412), the state is wrong
    (409), else a field (422)."""
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, StaleVersion):
        return 412
    if isinstance(error, WrongState):
        return 409
    return 422


def refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What every /v1 operation can answer besides success; each operation adds its own (404, 409, 400, ...).
COMMON: Responses = {
    401: refusal("Missing or unknown bearer token (checked before anything else)."),
    429: refusal(
        "Too many failed authentications from this address (`error` is `too_many_failures`): nothing was"
        " checked; wait the Retry-After seconds."
    ),
    422: refusal(
        "A parameter, header or body field is missing, unknown, out of its bound or invalid (`field` names it),"
        " or the body is not JSON (`error` is `invalid_json`)."
    ),
    503: refusal("The database is briefly unreachable: nothing changed, try again."),
}
FORBIDDEN: Responses = {403: refusal("The token's role may not do this (checked before the body is read).")}
NOT_FOUND: Responses = {404: refusal("No such case.")}
CONFLICT: Responses = {409: refusal("The case is not in a state for this command.")}
STALE: Responses = {
    412: refusal("If-Match names an older version of the case than the stored one: nothing changed, reload.")
}
TOO_LARGE: Responses = {413: refusal("The request body is larger than the API accepts.")}
# Unknown routes and methods answer in the same shape, under these codes.
_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def error_response(
    status: int, error: str, detail: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "field": field}, status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal the app or the framework makes answers in ErrorBody's shape."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer", **e.headers} if e.status == 401 else e.headers
        return error_response(e.status, e.error, e.detail, e.field, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        return _invalid(e.errors())

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        error = _HTTP_ERRORS.get(e.status_code, "bad_request")
        return error_response(e.status_code, error, str(e.detail), headers=e.headers)

    async def unavailable(_: Request, e: Exception) -> JSONResponse:
        detail = f"the database is briefly unreachable ({type(e).__name__}); nothing changed, try again"
        return error_response(503, "unavailable", detail, headers={"Retry-After": "1"})

    for transient in (*TRANSIENT, asyncpg.InternalClientError, ConcurrencyConflict):
        app.add_exception_handler(transient, unavailable)


def _invalid(errors: Sequence[Any]) -> JSONResponse:
    first: dict[str, Any] = errors[0] if errors else {"loc": ("body",), "type": "", "msg": "invalid"}
    if first["type"] == "json_invalid":
        reason = dict(first.get("ctx") or {}).get("error", "not JSON")
        return error_response(422, "invalid_json", f"the body is not JSON: {reason}", "body")
    detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in errors)
    field = ".".join(map(str, first["loc"][1:])) or str(first["loc"][0])
    error = "unknown_field" if first["type"] == "extra_forbidden" else "invalid_request"
    return error_response(422, error, detail, field)
