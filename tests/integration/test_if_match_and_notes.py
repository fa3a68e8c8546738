"""If-Match on the API's case commands, and internal notes, on a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.api_tokens import ApiToken
from service.bootstrap import Service, http_app
from service.config import Settings
from tests.support import AGENT, AUTH, TOKEN


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        api_tokens={
            TOKEN: ApiToken(actor="tester", role="owner"),
            "test-agent-token-for-the-suite-only": ApiToken(actor="ana", role="agent"),
        },
    )
    service = Service(settings)
    service.pool = pool
    transport = httpx.ASGITransport(app=http_app(service, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def open_case(api: httpx.AsyncClient, customer: str) -> dict[str, Any]:
    body = {"customer_id": customer, "severity": "major", "channel": "phone", "reason": "escalated by phone"}
    opened = await api.post("/v1/cases", json=body, headers=AUTH)
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


async def test_get_gives_the_version_as_etag_and_a_command_on_it_applies(api: httpx.AsyncClient) -> None:
    case = await open_case(api, "etag-1")
    path = f"/v1/cases/{case['case_id']}"
    got = await api.get(path, headers=AUTH)
    assert got.headers["etag"] == '"1"'
    assigned = await api.post(
        f"{path}/assign", json={"owner": "ana"}, headers={**AGENT, "If-Match": got.headers["etag"]}
    )
    assert assigned.status_code == 200 and assigned.json()["owner"] == "ana"
    assert assigned.headers["etag"] == '"2"'


async def test_a_stale_if_match_is_refused_with_412_and_nothing_applies(api: httpx.AsyncClient) -> None:
    case = await open_case(api, "etag-2")
    path = f"/v1/cases/{case['case_id']}"
    await api.post(f"{path}/assign", json={"owner": "ana"}, headers=AGENT)
    stale = await api.post(f"{path}/assign", json={"owner": "bob"}, headers={**AGENT, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json() == {
        "error": "stale_version",
        "detail": stale.json()["detail"],
        "field": "If-Match",
    }
    assert "you saw version 1, it is now at version 2" in stale.json()["detail"]
    reopen = await api.post(
        f"{path}/follow-up", json={"satisfied": True}, headers={**AGENT, "If-Match": '"1"'}
    )
    assert reopen.status_code == 412  # the rules that also read the customer's latest case check it too
    after = (await api.get(path, headers=AUTH)).json()
    assert after["owner"] == "ana" and after["version"] == 2


@pytest.mark.parametrize("header", ["7", 'W/"1"', '"x"', '"1", "2"'])
async def test_a_malformed_if_match_is_refused_naming_it(api: httpx.AsyncClient, header: str) -> None:
    case = await open_case(api, f"etag-bad-{len(header)}")
    path = f"/v1/cases/{case['case_id']}"
    refused = await api.post(f"{path}/acknowledge", headers={**AGENT, "If-Match": header})
    assert refused.status_code == 422 and refused.json()["field"] == "If-Match"
    assert (await api.get(path, headers=AUTH)).json()["version"] == 1


async def test_if_match_star_applies_to_any_version(api: httpx.AsyncClient) -> None:
    case = await open_case(api, "etag-3")
    acked = await api.post(f"/v1/cases/{case['case_id']}/acknowledge", headers={**AGENT, "If-Match": "*"})
    assert acked.status_code == 200 and acked.json()["version"] == 2


async def test_an_internal_note_is_kept_in_the_history_on_a_case_in_any_status(
    api: httpx.AsyncClient,
) -> None:
    case = await open_case(api, "note-1")
    path = f"/v1/cases/{case['case_id']}"
    noted = await api.post(f"{path}/notes", json={"note": "called twice, no answer"}, headers=AGENT)
    assert noted.status_code == 200 and noted.json()["version"] == 2
    resolve = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "buffer"}
    assert (await api.post(f"{path}/resolve", json=resolve, headers=AUTH)).status_code == 200
    later = await api.post(
        f"{path}/notes", json={"note": "customer wrote back"}, headers={**AGENT, "If-Match": '"3"'}
    )
    assert later.status_code == 200
    events = (await api.get(path, headers=AUTH)).json()["events"]
    notes = [(e["data"]["actor"], e["data"]["note"]) for e in events if e["type"] == "case.note_added"]
    assert notes == [("ana", "called twice, no answer"), ("ana", "customer wrote back")]


@pytest.mark.parametrize(
    "body", [{"note": "   "}, {"note": ""}, {"note": "x" * 4001}, {"note": "a\x00b"}, {}]
)
async def test_a_blank_or_unbounded_note_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, body: dict[str, str]
) -> None:
    case = await open_case(api, f"note-bad-{len(str(body))}")
    path = f"/v1/cases/{case['case_id']}"
    refused = await api.post(f"{path}/notes", json=body, headers=AGENT)
    assert refused.status_code == 422 and refused.json()["field"] == "note"
    assert (await api.get(path, headers=AUTH)).json()["version"] == 1


async def test_openapi_documents_if_match_etag_and_412_on_every_case_command(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    commands = [
        op
        for path, ops in doc["paths"].items()
        if path.startswith("/v1/cases/{case_id}/")
        for op in ops.values()
    ]
    assert len(commands) >= 10
    for op in commands:
        assert "If-Match" in [p["name"] for p in op["parameters"]], op["operationId"]
        assert "412" in op["responses"] and "ETag" in op["responses"]["200"]["headers"], op["operationId"]
    assert "ETag" in doc["paths"]["/v1/cases/{case_id}"]["get"]["responses"]["200"]["headers"]
