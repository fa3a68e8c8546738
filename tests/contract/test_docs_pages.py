"""/docs and /redoc load nothing from the internet: every asset they name is served by the service."""

from __future__ import annotations

import re

import httpx
import pytest

from service.adapters.http.api import create_app
from service.adapters.http.token_gate import FailureThrottle, TokenGate
from service.api_tokens import ApiTokens


async def _ready() -> dict[str, bool]:
    return {}


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = create_app(lambda: None, TokenGate(ApiTokens(), FailureThrottle(10)), _ready)  # type: ignore[arg-type, return-value]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_pages_name_only_assets_this_service_serves(
    client: httpx.AsyncClient, page: str
) -> None:
    answer = await client.get(page)
    assert answer.status_code == 200
    html = answer.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "an asset from another host"
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets, "the page names its script"
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000 or asset.endswith(".png"), asset
    assert "/openapi.json" in html


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_pages_let_the_browser_load_from_this_service_only(
    client: httpx.AsyncClient, page: str
) -> None:
    """The bundles name hosts of their own (ReDoc's credit logo on Redocly's CDN): the policy names none."""
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = {
        name: sources.split() for name, sources in (d.strip().split(" ", 1) for d in policy.split(";"))
    }
    assert directives["default-src"] == ["'self'"] and directives["img-src"] == ["'self'", "data:"]
    sources = {s for found in directives.values() for s in found}
    assert sources <= {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}, sources
