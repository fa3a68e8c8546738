"""The HTTP API's edges: authentication before anything else, one error shape, every input bounded."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.adapters.http.bounds import MAX_BODY_BYTES, MAX_OWNER_LENGTH, MAX_TEXT_LENGTH
from service.domain.bounds import MAX_ID_LENGTH
from tests.integration.api_only import api_over
from tests.support import AGENT, AUTH, MANAGER

ERROR_SHAPE = {"error", "detail", "field"}


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url) as client:
        yield client


@pytest.fixture
async def case(api: httpx.AsyncClient) -> dict[str, Any]:
    body = {"customer_id": "edge-1", "severity": "major", "channel": "phone", "reason": "escalated by phone"}
    opened = await api.post("/v1/cases", json=body, headers=MANAGER)
    assert opened.status_code == 201
    return opened.json()  # type: ignore[no-any-return]


def refused(answer: httpx.Response, status: int, error: str, field: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == ERROR_SHAPE and body["error"] == error and body["field"] == field, body


MALFORMED: list[dict[str, Any]] = [
    {"content": b"{not json"},
    {"content": b'{"owner": NaN}'},
    {"content": b"\xff\xfe"},
    {"json": {"owner": "x", "unknown": 1}},
    {"json": {"owner": "x" * (MAX_OWNER_LENGTH + 1)}},
    {"json": [1, 2, 3]},
    {},
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
async def test_an_unknown_caller_gets_401_whatever_the_body(
    api: httpx.AsyncClient, case: dict[str, Any], headers: dict[str, str], body: dict[str, Any]
) -> None:
    answer = await api.post(
        f"/v1/cases/{case['case_id']}/assign",
        headers={**headers, "content-type": "application/json"},
        **body,
    )
    refused(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_an_unknown_caller_gets_401_before_path_query_and_header_checks(api: httpx.AsyncClient) -> None:
    refused(await api.get("/v1/cases", params={"limit": 0, "cursor": "\x00"}), 401, "unauthenticated")
    refused(await api.get("/v1/trends/root-causes", params={"window_days": "x"}), 401, "unauthenticated")
    refused(await api.get("/v1/cases/%00"), 401, "unauthenticated")
    too_long = {"Idempotency-Key": "k" * (MAX_ID_LENGTH + 1)}
    refused(await api.post("/v1/cases/x/acknowledge", headers=too_long), 401, "unauthenticated")
    refused(await api.post("/v1/cases", content=b"x" * (MAX_BODY_BYTES + 1)), 401, "unauthenticated")


@pytest.mark.parametrize("body", MALFORMED)
async def test_an_agent_resolving_or_approving_gets_403_whatever_the_body(
    api: httpx.AsyncClient, case: dict[str, Any], body: dict[str, Any]
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    headers = {**AGENT, "content-type": "application/json"}
    refused(await api.post(f"{path}/resolve", headers=headers, **body), 403, "not_allowed")
    refused(await api.post(f"{path}/compensations/%00/approve", headers=headers, **body), 403, "not_allowed")
    after = (await api.get(path, headers=AGENT)).json()
    assert after["version"] == case["version"] and after["status"] == "open"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"owner": "x",}',
        b'{"owner": NaN}',
        b'{"owner": Infinity}',
        b'{"owner": "\xff"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"n": ' + b"9" * 5000 + b"}",
    ],
)
async def test_a_body_that_is_not_json_answers_422_invalid_json(
    api: httpx.AsyncClient, case: dict[str, Any], content: bytes
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    headers = {**MANAGER, "content-type": "application/json"}
    refused(
        await api.post(f"{path}/assign", content=content[:MAX_BODY_BYTES], headers=headers),
        422,
        "invalid_json",
        "body",
    )
    assert (await api.get(path, headers=AGENT)).json()["version"] == case["version"]


async def test_a_body_above_the_limit_answers_413_and_changes_nothing(
    api: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    huge = b'{"owner": "' + b"x" * MAX_BODY_BYTES + b'"}'
    refused(await api.post(f"{path}/assign", content=huge, headers=MANAGER), 413, "body_too_large")
    assert (await api.get(path, headers=AGENT)).json()["owner"] is None


@pytest.mark.parametrize(
    ("command", "body", "field"),
    [
        ("assign", {"owner": "ana", "priority": "high"}, "priority"),
        ("steps", {"kind": "call_customer", "kind2": "x"}, "kind2"),
        ("reopen", {"reason": "x", "by": "me"}, "by"),
    ],
)
async def test_an_unknown_field_in_a_command_is_refused_naming_it(
    api: httpx.AsyncClient, case: dict[str, Any], command: str, body: dict[str, Any], field: str
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    refused(await api.post(f"{path}/{command}", json=body, headers=MANAGER), 422, "unknown_field", field)
    assert (await api.get(path, headers=AGENT)).json()["version"] == case["version"]


async def test_staff_text_is_bounded_and_the_bound_itself_is_accepted(
    api: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    assert (await api.post(f"{path}/steps", json={"kind": "call_customer"}, headers=AGENT)).status_code == 200
    outcome = f"{path}/steps/step-1/outcome"
    too_long = {"outcome": "completed", "notes": "n" * (MAX_TEXT_LENGTH + 1)}
    refused(await api.post(outcome, json=too_long, headers=AGENT), 422, "invalid_request", "notes")
    refused(
        await api.post(f"{path}/assign", json={"owner": "o" * (MAX_OWNER_LENGTH + 1)}, headers=AGENT),
        422,
        "invalid_request",
        "owner",
    )
    refused(
        await api.post(f"{path}/assign", json={"owner": "ana\x00"}, headers=AGENT),
        422,
        "invalid_request",
        "owner",
    )
    refused(
        await api.post(f"{path}/assign", json={"owner": "ana\nbob"}, headers=AGENT),
        422,
        "invalid_request",
        "owner",
    )
    at_the_bound = {"outcome": "completed", "notes": "line one\n\tline two " + "n" * (MAX_TEXT_LENGTH - 19)}
    done = await api.post(outcome, json=at_the_bound, headers=AGENT)
    assert done.status_code == 200 and done.json()["steps"][0]["notes"] == at_the_bound["notes"]
    refused(
        await api.post(f"{path}/reopen", json={"reason": "bell\x07"}, headers=AGENT),
        422,
        "invalid_request",
        "reason",
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "field"),
    [
        ("GET", "/v1/cases/%00", {}, "case_id"),
        ("GET", "/v1/cases/" + "c" * (MAX_ID_LENGTH + 1), {}, "case_id"),
        ("POST", "/v1/cases/x%01/acknowledge", {}, "case_id"),
        ("POST", "/v1/cases/x/steps/%7F/outcome", {}, "step_id"),
        ("POST", "/v1/cases/x/compensations/" + "r" * (MAX_ID_LENGTH + 1) + "/approve", {}, "request_id"),
        (
            "POST",
            "/v1/cases/x/acknowledge",
            {"Idempotency-Key": "k" * (MAX_ID_LENGTH + 1)},
            "Idempotency-Key",
        ),
        ("GET", "/v1/cases?customer_id=%00", {}, "customer_id"),
        ("GET", "/v1/cases?owner=a%0Ab", {}, "owner"),
        ("GET", "/v1/cases?due_before=2026-01-01T00:00:00", {}, "due_before"),  # no offset: which zone?
        ("GET", "/v1/cases?due_before=9999-12-31T23:00:00-12:00", {}, "due_before"),
        ("GET", "/v1/cases?limit=0", {}, "limit"),
        ("GET", "/v1/trends/root-causes?window_days=0", {}, "window_days"),
    ],
)
async def test_ids_headers_and_queries_out_of_bounds_answer_422_naming_them(
    api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], field: str
) -> None:
    answer = await api.request(method, path, headers={**AUTH, **headers})
    refused(answer, 422, "invalid_request", field)


@pytest.mark.parametrize(
    "cursor", ["%%%", base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|\x00").decode()]
)
async def test_a_cursor_the_api_did_not_issue_answers_400(api: httpx.AsyncClient, cursor: str) -> None:
    refused(
        await api.get("/v1/cases", params={"cursor": cursor}, headers=AUTH), 400, "invalid_cursor", "cursor"
    )


async def test_unknown_routes_and_methods_answer_in_the_same_shape(api: httpx.AsyncClient) -> None:
    refused(await api.get("/v1/nothing-here", headers=AUTH), 404, "not_found")
    refused(await api.delete("/v1/cases", headers=AUTH), 405, "method_not_allowed")


async def test_an_idempotency_key_is_scoped_to_its_actor_and_its_case(api: httpx.AsyncClient) -> None:
    opened = []
    for customer in ("scope-1", "scope-2"):
        body = {"customer_id": customer, "severity": "minor", "reason": "walk-in"}
        answer = await api.post("/v1/cases", json=body, headers={**MANAGER, "Idempotency-Key": "open-it"})
        assert answer.status_code == 201
        opened.append(answer.json())
    first, second = opened
    assert first["case_id"] != second["case_id"]  # the same key opened two customers' cases

    key = {"Idempotency-Key": "step-please"}
    on_first = await api.post(
        f"/v1/cases/{first['case_id']}/steps", json={"kind": "call_customer"}, headers={**AGENT, **key}
    )
    on_second = await api.post(
        f"/v1/cases/{second['case_id']}/steps", json={"kind": "call_customer"}, headers={**AGENT, **key}
    )
    assert on_first.json()["case_id"] == first["case_id"] and on_second.json()["case_id"] == second["case_id"]
    again = await api.post(
        f"/v1/cases/{first['case_id']}/steps", json={"kind": "call_customer"}, headers={**AGENT, **key}
    )
    assert again.json() == on_first.json()
    by_someone_else = await api.post(
        f"/v1/cases/{first['case_id']}/steps", json={"kind": "call_customer"}, headers={**MANAGER, **key}
    )
    assert len(by_someone_else.json()["steps"]) == 2
    reused = await api.post(f"/v1/cases/{first['case_id']}/acknowledge", headers={**AGENT, **key})
    refused(reused, 422, "invalid_value", "Idempotency-Key")


async def test_while_the_database_is_away_reads_and_commands_answer_503_in_the_same_shape(
    database_url: str,
) -> None:
    away = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await away.close()  # every use now fails the way a lost connection does (asyncpg.InterfaceError)
    async with api_over(away, database_url) as api:
        answer = await api.get("/v1/cases", headers=AUTH)
        refused(answer, 503, "unavailable")
        assert answer.headers["retry-after"] == "1"
        refused(await api.post("/v1/cases/x/acknowledge", headers=AGENT), 503, "unavailable")
