"""/docs and /redoc render the API's operations in chromium with every host but the service's blocked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Route, expect

from service.config import Settings
from tests.browser.conftest import browser_settings
from tests.infra import Kafka
from tests.support import TOKEN, ServiceProcess, eventually

AREAS = ["cases", "commands", "compensations", "trends", "sessions", "ops"]
RENDERED = 30_000  # ms: the bundles are megabytes of script, parsed on a shared 2-core machine


@pytest.fixture
async def service(kafka: Kafka, database_url: str, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    settings: Settings = browser_settings(kafka, database_url)
    process = ServiceProcess(settings, tmp_path, "service").start()
    try:
        await eventually(process.url_ready, what="the service ready")
        yield process
    finally:
        process.stop()


async def offline(browser: Browser, service: ServiceProcess, blocked: list[str]) -> BrowserContext:
    """A browser context that reaches the service and nothing else, noting each request that left the browser for
    another host (one the page's Content-Security-Policy stops never leaves it, and is not among them)."""
    ours = urlsplit(service.url).netloc
    context = await browser.new_context()

    async def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_service)
    return context


async def test_swagger_ui_renders_every_area_and_its_authorize_reaches_the_api_with_no_network(
    browser: Browser, service: ServiceProcess
) -> None:
    blocked: list[str] = []
    page = await (await offline(browser, service, blocked)).new_page()
    await page.goto(f"{service.url}/docs")
    areas = [re.compile(f"^{a}") for a in AREAS]
    await expect(page.locator(".opblock-tag")).to_have_text(areas, timeout=RENDERED)
    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() >= 17
    await expect(page.locator("#operations-cases-list_cases")).to_be_visible()  # tag and operation id
    await page.get_by_role("button", name="Authorize").first.click()
    await expect(page.get_by_role("heading", name="bearer (http, Bearer)")).to_be_visible()
    await page.get_by_role("textbox", name="auth-bearer-value").fill(TOKEN)
    await page.get_by_role("button", name="Apply credentials").click()
    await page.get_by_role("button", name="Close").click()

    operation = page.locator("#operations-cases-list_cases")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    await expect(status).to_have_text("200")  # the token reached the API: Authorize works
    assert blocked == []


async def test_redoc_renders_the_operations_with_no_network(
    browser: Browser, service: ServiceProcess
) -> None:
    blocked: list[str] = []
    page = await (await offline(browser, service, blocked)).new_page()
    stopped: list[
        tuple[str, str | None]
    ] = []  # what the page tried to load from elsewhere, and why it failed
    ours = urlsplit(service.url).netloc
    page.on(
        "requestfailed",
        lambda r: None if urlsplit(r.url).netloc == ours else stopped.append((r.url, r.failure)),
    )
    await page.goto(f"{service.url}/redoc")
    heading = page.get_by_role("heading", name=re.compile("Recovery Loop"))
    await expect(heading).to_be_visible(timeout=RENDERED)
    for operation in ("List Cases", "Approve Compensation", "Root Cause Trends", "Readyz"):
        await expect(page.get_by_role("heading", name=re.compile(f"{operation}$"))).to_be_visible()
    await expect(page.get_by_role("link", name="API docs by Redocly")).to_be_visible()  # the credit, as text
    await expect(page.locator(f"img[src^='http']:not([src^='{service.url}'])")).to_have_count(0)
    assert blocked == []  # no request left the browser, not even for the credit's logo on Redocly's CDN
    assert all(failure == "csp" for _, failure in stopped), stopped  # the page's policy kept it in
