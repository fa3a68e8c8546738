"""A real headless browser: Debian's chromium, driven by Playwright for Python (no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, async_playwright

from service.config import Settings
from tests.infra import Kafka
from tests.support import ServiceProcess, eventually, make_settings

CHROMIUM = "/usr/bin/chromium"
# The machine's network is closed: without these, Chromium keeps trying to reach Google's hosts.
FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make test does, as root)")
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS + sandbox
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def producer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.idempotent_producer)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def browser_settings(kafka: Kafka, database_url: str, **overrides: Any) -> Settings:
    """The browser reaches the service on http://127.0.0.1, as under `make run`: the cookie goes without
    Secure there (RECOVERY_CONSOLE_COOKIE_SECURE false, which `recovery serve` refuses off loopback)."""
    return make_settings(kafka, database_url, console_cookie_secure=False, **overrides)


@pytest.fixture
async def settings(kafka: Kafka, database_url: str) -> Settings:
    """The service's settings; a test module overrides this fixture to change them."""
    return browser_settings(kafka, database_url)


@pytest.fixture
async def service(settings: Settings, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(settings, tmp_path, "service").start()
    try:
        await eventually(process.url_ready, what="the service ready")
        yield process
    finally:
        process.stop()
