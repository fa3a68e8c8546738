"""HTTP request metrics: counted and timed by route template and status, with a bounded label set; the
build-info gauge. Over the real app and PostgreSQL, read back through its own /metrics."""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from service.adapters.http.request_metrics import RequestMetrics
from tests.integration.api_only import api_over
from tests.support import AUTH

CASE = "/v1/cases/{case_id}"


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url) as client:
        yield client


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the app's /metrics: (name, labels) -> value."""
    response = await api.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def requests(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str) -> float:
    return samples.get(("recovery_http_requests_total", frozenset(labels.items())), 0.0)


def timed(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str) -> float:
    return samples.get(("recovery_http_request_seconds_count", frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status_never_by_raw_path(
    api: httpx.AsyncClient,
) -> None:
    before = await scrape(api)
    for case_id in ("no-such-case-1", "no-such-case-2", "no-such-case-3"):
        assert (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).status_code == 404
    assert (await api.get("/v1/cases", headers=AUTH)).status_code == 200
    assert (await api.get("/v1/cases")).status_code == 401
    after = await scrape(api)

    def delta(**labels: str) -> float:
        return requests(after, **labels) - requests(before, **labels)

    assert delta(method="GET", route=CASE, status="404") == 3
    assert delta(method="GET", route="/v1/cases", status="200") == 1
    assert delta(method="GET", route="/v1/cases", status="401") == 1
    assert timed(after, method="GET", route=CASE) - timed(before, method="GET", route=CASE) == 3
    routes = {dict(labels).get("route") for name, labels in after if name.startswith("recovery_http_")}
    assert not any("no-such-case" in str(route) for route in routes), routes


async def test_paths_no_route_serves_share_one_label_and_odd_methods_another(api: httpx.AsyncClient) -> None:
    before = await scrape(api)
    for path in ("/wp-admin/a.php", "/v1/nothing/here", "/x" * 50):
        assert (await api.get(path)).status_code == 404
    assert (await api.request("BREW", "/v1/cases", headers=AUTH)).status_code == 405
    after = await scrape(api)

    assert (
        requests(after, method="GET", route="unmatched", status="404")
        - requests(before, method="GET", route="unmatched", status="404")
        == 3
    )
    assert (
        requests(after, method="other", route="/v1/cases", status="405")
        - requests(before, method="other", route="/v1/cases", status="405")
        == 1
    )
    methods = {dict(labels).get("method") for name, labels in after if name == "recovery_http_requests_total"}
    assert "BREW" not in methods


async def test_the_build_info_gauge_names_the_package_version_and_python(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    labels = frozenset({"version": "0.1.0", "python": platform.python_version()}.items())
    assert samples[("recovery_build_info", labels)] == 1
    assert [key for key in samples if key[0] == "recovery_build_info"] == [("recovery_build_info", labels)]


async def test_the_middleware_passes_each_message_on_as_sent_and_counts_an_escaping_error_as_500() -> None:
    sent: list[Message] = []

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"one", b"two"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
    await RequestMetrics(streaming)(scope, receive, send)
    assert [m.get("body") for m in sent] == [None, b"one", b"two", b""]  # three body messages, not one

    labels = {"method": "GET", "route": "unmatched", "status": "500"}
    before = REGISTRY.get_sample_value("recovery_http_requests_total", labels) or 0.0
    with pytest.raises(RuntimeError):
        await RequestMetrics(failing)(dict(scope), receive, send)
    assert REGISTRY.get_sample_value("recovery_http_requests_total", labels) == before + 1
