"""Schemathesis against the app's own /openapi.json, over a real PostgreSQL: no 5xx, every answer as documented.

Hypothesis and schemathesis generate in a worker thread; each request goes to the app on the test's event loop
(where the asyncpg pool lives), through the same ASGI transport the other HTTP tests use. Bounded in examples
per operation and in wall-clock time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api_only import api_over
from tests.support import AGENT, AUTH

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25  # for each of: random ids, a real case's id, negative (schema-violating) data
BUDGET_SECONDS = 150.0  # the whole run; generation stops sending when it is spent
CALL_TIMEOUT = 30.0


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url) as client:
        yield client


async def a_worked_case(api: httpx.AsyncClient) -> str:
    """A case with a step and a compensation waiting for approval, so generated commands meet real state."""
    body = {"customer_id": "fuzz-1", "severity": "major", "channel": "chat", "reason": "fuzzing"}
    case_id: str = (await api.post("/v1/cases", json=body, headers=AUTH)).json()["case_id"]
    assert (
        await api.post(f"/v1/cases/{case_id}/steps", json={"kind": "call_customer"}, headers=AGENT)
    ).is_success
    refund = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "repair"}
    waiting = await api.post(f"/v1/cases/{case_id}/compensations", json=refund, headers=AGENT)
    assert waiting.json()["compensations"][0]["status"] == "awaiting_approval"
    return case_id


def as_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis's requests-style call as httpx arguments."""
    request = {
        name: kwargs[name] for name in ("method", "url", "headers", "params", "cookies") if kwargs.get(name)
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data.encode() if isinstance(data, str) else data
    return request


def strategies(schema: Any, case_id: str) -> list[tuple[str, Any]]:
    named = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue  # the probes and /metrics take no input: the dependency tests cover their answers
        has_case = "{case_id}" in operation.path
        named.append((f"{operation.label} positive", operation.as_strategy(headers=AUTH)))
        if has_case:
            real = operation.as_strategy(headers=AUTH, path_parameters={"case_id": case_id})
            named.append((f"{operation.label} on a real case", real))
        negative = operation.as_strategy(schemathesis.GenerationMode.NEGATIVE, headers=AUTH)
        named.append((f"{operation.label} negative", negative))
    return named


async def test_the_api_answers_every_generated_request_as_its_openapi_document_says(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    named = strategies(schema, await a_worked_case(api))
    assert len(named) >= 2 * len(document["paths"])
    loop = asyncio.get_running_loop()
    stop_at = time.monotonic() + BUDGET_SECONDS
    sent: dict[str, int] = {}
    statuses: set[int] = set()

    def call(request: dict[str, Any]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(api.request(**request), loop).result(CALL_TIMEOUT)

    def run(name: str, strategy: Any) -> None:
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            if time.monotonic() > stop_at:
                reject()
            kwargs = case.as_transport_kwargs(base_url="http://api")
            try:
                response = call(as_httpx(kwargs))
            except (UnicodeEncodeError, httpx.InvalidURL, httpx.LocalProtocolError):
                reject()  # a request no HTTP client could send (e.g. a header outside latin-1)
            sent[name] = sent.get(name, 0) + 1
            statuses.add(response.status_code)
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

        one()

    def run_all(runs: list[tuple[str, Any]], each: Callable[[str, Any], None]) -> None:
        for name, strategy in runs:
            each(name, strategy)

    await asyncio.to_thread(run_all, named, run)
    assert sum(sent.values()) >= len(named), sent  # every strategy sent something within the budget
    assert not any(s >= 500 for s in statuses) and {200, 201, 404, 422} <= statuses, statuses
