"""The service serves its wire contract: /asyncapi.json is the exported document, /asyncapi a self-contained page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from service.adapters.http.asyncapi_page import render_page
from service.adapters.kafka.contract import ASYNCAPI_PATH, asyncapi, channel_specs
from service.bootstrap import Service, http_app
from service.config import Settings
from tools.schemas import SCHEMAS_DIR

LINK_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "srcset",
    "poster",
    "data",
    "background",
    "manifest",
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings()
    app = http_app(
        Service(settings), settings
    )  # no lifespan: nothing is connected, the contract needs nothing
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


class Tags(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


async def test_the_served_document_is_the_exporters_byte_for_byte_and_needs_no_token(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/asyncapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json() == asyncapi(channel_specs())
    assert answer.text == (SCHEMAS_DIR / ASYNCAPI_PATH).read_text(encoding="utf-8")


async def test_the_page_lists_every_channel_with_its_direction_and_every_message_and_payload_schema(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/asyncapi")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    document = asyncapi(channel_specs())
    text = " ".join(parsed(answer.text).text)
    for channel in document["channels"].values():
        assert channel["address"] in text
    for name, message in document["components"]["messages"].items():
        assert name in text and message["title"] in text
        for header in message["headers"].get("properties", {}):
            assert header in text
        ref = message["payload"].get("$ref")
        if ref:
            assert ref.rsplit("/", 1)[1] in text
    for name in document["components"]["schemas"]:
        assert name in text
    ids = {attrs.get("id") for _, attrs in parsed(answer.text).tags}
    links = [attrs["href"] for tag, attrs in parsed(answer.text).tags if tag == "a" and attrs.get("href")]
    assert all(link.removeprefix("#") in ids for link in links if link and link.startswith("#"))
    assert "in: you publish" in text and "out: the service publishes" in text


async def test_the_page_loads_nothing_from_anywhere_and_forbids_it(client: httpx.AsyncClient) -> None:
    answer = await client.get("/asyncapi")
    tags = parsed(answer.text)
    assert "script" not in {tag for tag, _ in tags.tags} and "<script" not in answer.text.lower()
    assert not {tag for tag, _ in tags.tags} & {"link", "iframe", "img", "object", "embed", "base", "form"}
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            if name in LINK_ATTRIBUTES:
                assert value and (value.startswith("#") or value == "/asyncapi.json"), (tag, name, value)
    assert "url(" not in answer.text and "@import" not in answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_every_text_of_the_document_is_escaped() -> None:
    document = asyncapi(channel_specs())
    hostile = '<script src="https://evil.example/x.js"></script><img src=x onerror=alert(1)>'
    document["info"]["description"] = hostile
    first = next(iter(document["channels"].values()))
    first["description"] = hostile
    message = next(iter(document["components"]["messages"].values()))
    message["summary"] = hostile
    message["headers"]["properties"]["ce_id"]["description"] = hostile
    page = render_page(json.loads(json.dumps(document)))
    assert "<script" not in page and "<img" not in page
    assert page.count("&lt;script src=&quot;https://evil.example/x.js&quot;&gt;") == 4
    assert not [t for t, attrs in parsed(page).tags if set(attrs) & {"onerror", "src"}]


async def test_a_service_serves_the_topics_it_is_configured_with() -> None:
    settings = Settings(topic_nps="acme.nps.v2", topic_case_events="acme.cases.v1")
    app = http_app(Service(settings), settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        served = (await client.get("/asyncapi.json")).json()
    addresses = {channel["address"] for channel in served["channels"].values()}
    assert {"acme.nps.v2", "acme.cases.v1"} <= addresses
    assert "recovery.signals.nps.v1" not in addresses and "recovery.case-events.v1" not in addresses
