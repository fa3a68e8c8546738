"""The HTTP API: reads of cases, health, readiness and metrics; the /v1 routes authenticate first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime

from service.adapters.http.auth import Actor, AuthenticatedRoute
from service.adapters.http.bounds import (
    ETAG,
    MAX_CURSOR_LENGTH,
    MAX_OWNER_LENGTH,
    CaseId,
    etag_of,
    query_id,
)
from service.adapters.http.docs_pages import install_docs_pages
from service.adapters.http.errors import (
    COMMON,
    NOT_FOUND,
    ApiError,
    Responses,
    install_error_handlers,
    refusal,
)
from service.adapters.http.models import (
    CaseDetail,
    CasePage,
    CaseView,
    RootCauseCount,
    RootCauseTrends,
)
from service.adapters.http.openapi import (
    LIVENESS,
    METRICS,
    OPENAPI_CONTACT,
    OPENAPI_SERVERS,
    OPENAPI_TAGS,
    READINESS,
    Liveness,
    Readiness,
    operation_id,
    tag_operations,
)
from service.adapters.http.request_metrics import RequestMetrics
from service.adapters.http.token_gate import TokenGate
from service.adapters.retry import is_transient
from service.app.reads import CaseFilter, CaseReads, InvalidCursor
from service.domain.bounds import NO_CONTROL_CHARACTERS
from service.domain.case import CaseStatus
from service.domain.severity import Severity
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.observability import OPEN_CASES, VERSION

BAD_CURSOR: Responses = {400: refusal("The cursor is not one this API issued (`error` is `invalid_cursor`).")}
# Deadlines PostgreSQL and Python both hold, with room for any time zone.
EARLIEST, LATEST = "1900-01-01T00:00:00Z", "9000-01-01T00:00:00Z"
_EARLIEST, _LATEST = datetime.fromisoformat(EARLIEST), datetime.fromisoformat(LATEST)
_DEFAULT_TRENDS = TrendPolicy()
_DEFAULT_SLA = SlaPolicy()


def create_app(
    reads_of: Callable[[], CaseReads],
    gate: TokenGate,
    ready: Callable[[], Awaitable[dict[str, bool]]],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    failures: Callable[[], list[str]] = list,
    routers: Sequence[APIRouter] = (),
    trends: TrendPolicy = _DEFAULT_TRENDS,
    sla: SlaPolicy = _DEFAULT_SLA,
    degradations: Callable[[], list[str]] = list,
) -> FastAPI:
    app = FastAPI(
        title="Recovery Loop",
        version=VERSION,
        lifespan=lifespan,
        openapi_url=None,  # served by install_docs_pages as a route of the API's kind (metrics name it)
        docs_url=None,  # served by install_docs_pages, with assets from this process, not a CDN
        redoc_url=None,
        description="Every /v1 request carries `Authorization: Bearer <token>`, checked before anything else"
        " (401, then 403 for a role that may not act). Every refusal answers "
        '`{"error", "detail", "field"}`; a body that is not JSON answers 422 with `error` `invalid_json`.',
        openapi_tags=OPENAPI_TAGS,
        servers=OPENAPI_SERVERS,
        contact=OPENAPI_CONTACT,
        generate_unique_id_function=operation_id,
    )
    app.state.gate = gate
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    install_docs_pages(app)
    app.include_router(_read_router(reads_of, trends, sla))
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", response_model=Liveness, responses=LIVENESS)
    async def healthz() -> JSONResponse:
        """Alive unless a loop stopped on an error that belongs to no record: then restart the process. Alive
        and `degraded` while something runs on but is not right yet (it is tried again: no restart needed)."""
        stopped = failures()
        if stopped:
            return JSONResponse({"status": "failed", "failed": stopped}, 503)
        degraded = degradations()
        if degraded:
            return JSONResponse({"status": "alive", "degraded": degraded})
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", response_model=Readiness, responses=READINESS)
    async def readyz() -> JSONResponse:
        """Each dependency this process needs, "up" or "down"; answers within two seconds whatever they do."""
        checks = await ready()
        body = {"ready": all(checks.values()), **{k: "up" if up else "down" for k, up in checks.items()}}
        return JSONResponse(body, 200 if all(checks.values()) else 503)

    @app.get("/metrics", response_class=Response, responses=METRICS)
    async def metrics() -> Response:
        """The process's metrics, and the open cases by severity as the database counts them now."""
        await ready()  # recovery_ready{dependency}, as /readyz sees it now
        try:
            counts = await asyncio.wait_for(reads_of().open_cases_by_severity(), 2)
        except Exception as e:  # still serve the process's own metrics while the database is away
            if not is_transient(e):
                raise
            counts = None
        for severity in Severity:
            if counts is not None:
                OPEN_CASES.labels(severity.value).set(counts.get(severity.value, 0))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    tag_operations(app)
    return app


def _read_router(reads_of: Callable[[], CaseReads], trends: TrendPolicy, sla: SlaPolicy) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=AuthenticatedRoute, responses=COMMON)

    @router.get("/cases", response_model=CasePage, responses=BAD_CURSOR)
    async def list_cases(
        _: Actor,
        customer_id: Annotated[str | None, query_id("Only this customer's cases.")] = None,
        status: CaseStatus | None = None,
        severity: Severity | None = None,
        owner: Annotated[
            str | None, Query(max_length=MAX_OWNER_LENGTH, pattern=NO_CONTROL_CHARACTERS)
        ] = None,
        due_before: Annotated[
            AwareDatetime | None,
            Query(
                description=f"Resolution deadline before this time, with its offset; between {EARLIEST} and {LATEST}."
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            str | None, Query(max_length=MAX_CURSOR_LENGTH, pattern=NO_CONTROL_CHARACTERS)
        ] = None,
    ) -> CasePage:
        """Cases ordered by resolution deadline, soonest first."""
        if due_before is not None and not _EARLIEST <= due_before <= _LATEST:
            raise ApiError(
                422, "invalid_request", f"due_before must be between {EARLIEST} and {LATEST}", "due_before"
            )
        where = CaseFilter(
            customer_id, status and status.value, severity and severity.value, owner, due_before
        )
        try:
            cases, next_cursor = await reads_of().list_cases(where, limit, cursor)
        except InvalidCursor as e:
            raise ApiError(400, "invalid_cursor", str(e), "cursor") from e
        return CasePage(items=[CaseView.of(c) for c in cases], next_cursor=next_cursor)

    @router.get("/cases/{case_id}", response_model=CaseDetail, responses={**NOT_FOUND, **ETAG})
    async def get_case(case_id: CaseId, _: Actor, response: Response) -> CaseDetail:
        """The case with its full event history, in order; its ETag names its version (for If-Match)."""
        found = await reads_of().get_case(case_id)
        if found is None:
            raise ApiError(404, "not_found", f"no case {case_id}")
        state, events = found
        response.headers["ETag"] = etag_of(state.state.version)
        return CaseDetail.at(state, events, sla, datetime.now(UTC))

    @router.get("/trends/root-causes", response_model=RootCauseTrends)
    async def root_cause_trends(
        _: Actor,
        window_days: Annotated[
            int,
            Query(
                ge=1,
                le=3650,
                description="The trailing window to count over, in days; the configured trend window if absent.",
            ),
        ] = trends.window.days,
    ) -> RootCauseTrends:
        """Resolved cases per root-cause tag over the trailing `window_days`, each with `trend`: its count is at
        least the trend threshold, counted over that window. Only the configured trend window's crossings are
        published (once each, on the trends topic); any other window is a what-if read, published nowhere."""
        rows = await reads_of().root_causes(window_days)
        return RootCauseTrends(
            window_days=window_days,
            threshold=trends.threshold,
            tags=[RootCauseCount(tag=t, count=n, trend=trends.is_trend(n)) for t, n in rows],
        )

    return router
