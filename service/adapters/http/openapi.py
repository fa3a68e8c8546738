"""What the OpenAPI document shows clients beyond the routes: the areas (tags), readable operation ids, the probes.

The tags are given here, by path, for every operation of the document, so an area is named in one place
whatever module declares the route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from service.adapters.http.errors import Responses

OPENAPI_TAGS: list[dict[str, Any]] = [
    {
        "name": "cases",
        "description": "Open a case by hand, list the open and closed ones, read one with its history.",
    },
    {
        "name": "commands",
        "description": "Work a case: assign, acknowledge, steps and their outcomes, resolve, follow-up, reopen,"
        " notes. Each answers the case as it is after the command.",
    },
    {
        "name": "compensations",
        "description": "Request a compensation for a case, and approve one that waits for a manager or owner.",
    },
    {"name": "trends", "description": "Resolved cases per root cause over a window, and which are trends."},
    {"name": "sessions", "description": "End every console session of an actor (owner)."},
    {"name": "ops", "description": "Probes and metrics for the orchestrator and Prometheus (no token)."},
]


def operation_id(route: APIRoute) -> str:
    """The handler's name (`list_cases`, `approve_compensation`): what a generated client calls the method."""
    return route.name


def tag_of(path: str) -> str:
    if not path.startswith("/v1/"):
        return "ops"
    if path.startswith("/v1/trends"):
        return "trends"
    if path.startswith("/v1/sessions"):
        return "sessions"
    if "/compensations" in path:
        return "compensations"
    if path.startswith("/v1/cases/{case_id}/"):
        return "commands"
    return "cases"


def tag_operations(app: FastAPI) -> None:
    """Each operation of the document under its area's tag, by path (included routers are resolved lazily)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path, item in build()["paths"].items():
                for operation in item.values():
                    operation["tags"] = [tag_of(path)]
        return build()

    app.openapi = openapi  # type: ignore[method-assign]


class Liveness(BaseModel):
    status: str = Field(description="`alive`, or `failed` when a loop stopped: restart the process.")
    failed: list[str] | None = Field(None, description="The loops that stopped, and the error's type.")
    degraded: list[str] | None = Field(
        None,
        description="What runs on but is not right yet, and why (e.g. an SLA policy not applied in full): it is"
        " tried again by itself; no restart needed.",
    )


class Readiness(BaseModel):
    model_config = ConfigDict(extra="allow")

    ready: bool = Field(
        description="Every dependency answers. Each dependency (`database`, `kafka` when this process uses it)"
        " is a further field, `up` or `down`."
    )


LIVENESS: Responses = {
    503: {"model": Liveness, "description": "A loop stopped on an error that belongs to no record."}
}
READINESS: Responses = {
    503: {"model": Readiness, "description": "A dependency did not answer within two seconds."}
}
METRICS: Responses = {
    200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format."}
}
