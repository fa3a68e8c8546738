"""The HTTP API: reads of cases, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.adapters.http.models import (
    CaseDetail,
    CasePage,
    CaseView,
    ErrorBody,
    EventView,
    RootCauseCount,
    RootCauseTrends,
)
from service.adapters.postgres.case_reads import CaseFilter, InvalidCursor, PostgresCaseReads
from service.adapters.postgres.errors import TRANSIENT
from service.config import ApiToken
from service.domain.case import CaseStatus
from service.domain.severity import Severity
from service.observability import OPEN_CASES

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown bearer token."},
    403: {"model": ErrorBody, "description": "The token's role may not do this."},
}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def authenticated(request: Request) -> ApiToken:
    """The actor and role behind the request's bearer token."""
    tokens: dict[str, ApiToken] = request.app.state.tokens
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token not in tokens:
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token> with a known token")
    return tokens[token]


Actor = Annotated[ApiToken, Depends(authenticated)]


def create_app(
    reads_of: Callable[[], PostgresCaseReads],
    tokens: dict[str, ApiToken],
    ready: Callable[[], Awaitable[dict[str, bool]]],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    alive: Callable[[], bool] = lambda: True,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    app = FastAPI(title="Recovery Loop", version="0.1.0", lifespan=lifespan)
    app.state.tokens = tokens
    for router in routers:
        app.include_router(router)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        body = {"error": e.error, "detail": e.detail, **({"field": e.field} if e.field else {})}
        return JSONResponse(body, e.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in errors)
        field = ".".join(map(str, errors[0]["loc"][1:])) if errors else None
        return JSONResponse({"error": "invalid_request", "detail": detail, "field": field}, 422)

    @app.get("/v1/cases", response_model=CasePage, responses={**ERRORS, 400: {"model": ErrorBody}})
    async def list_cases(
        _: Actor,
        customer_id: str | None = None,
        status: CaseStatus | None = None,
        severity: Severity | None = None,
        owner: str | None = None,
        due_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> CasePage:
        """Cases ordered by resolution deadline, soonest first."""
        where = CaseFilter(
            customer_id, status and status.value, severity and severity.value, owner, due_before
        )
        try:
            cases, next_cursor = await reads_of().list_cases(where, limit, cursor)
        except InvalidCursor as e:
            raise ApiError(400, "invalid_cursor", str(e)) from e
        return CasePage(items=[CaseView.of(c) for c in cases], next_cursor=next_cursor)

    @app.get(
        "/v1/cases/{case_id}", response_model=CaseDetail, responses={**ERRORS, 404: {"model": ErrorBody}}
    )
    async def get_case(case_id: str, _: Actor) -> CaseDetail:
        """The case with its full event history, in order."""
        found = await reads_of().get_case(case_id)
        if found is None:
            raise ApiError(404, "not_found", f"no case {case_id}")
        state, events = found
        view = CaseView.of(state).model_dump()
        return CaseDetail(**view, events=[EventView.of(e) for e in events])

    @app.get("/v1/trends/root-causes", response_model=RootCauseTrends, responses=ERRORS)
    async def root_cause_trends(
        _: Actor, window_days: Annotated[int, Query(ge=1, le=3650)] = 90
    ) -> RootCauseTrends:
        """Resolved cases per root-cause tag in the trailing window; `trend` marks tags above the threshold."""
        rows = await reads_of().root_causes(window_days)
        return RootCauseTrends(
            window_days=window_days,
            tags=[RootCauseCount(tag=t, count=n, trend=trend) for t, n, trend in rows],
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        if not alive():
            return JSONResponse(
                {"status": "failed", "detail": "the consumer stopped on a batch; see logs"}, 503
            )
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await ready()
        return JSONResponse({"ready": all(checks.values()), **checks}, 200 if all(checks.values()) else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        try:
            counts = await reads_of().open_cases_by_severity()
        except TRANSIENT:  # still serve the process's own metrics while the database is away
            counts = None
        for severity in Severity:
            if counts is not None:
                OPEN_CASES.labels(severity.value).set(counts.get(severity.value, 0))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
