from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from hypothesis import settings

from tests.infra import Kafka, kafka_broker, postgres_server, unique, with_database
from tests.support import DATA_KEYS

# Every Settings() a test makes, and every process it starts, seals texts under the suite's master key (the
# service refuses to start without one); tests of that refusal start their process without it.
os.environ.setdefault("RECOVERY_DATA_KEYS", DATA_KEYS)

# No property test is a timing test: speed is the benchmark's business, and a shared 2-core machine makes
# Hypothesis's default 200 ms deadline per example fail tests that are right.
settings.register_profile("recovery", deadline=None)
settings.load_profile("recovery")


@pytest.fixture(scope="session")
def kafka() -> Iterator[Kafka]:
    with kafka_broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture
async def database_url(postgres: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = unique("t")
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(postgres, name)


_TIER_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each test's setup, call and teardown time, summed per tier (tests/<tier>/…)."""
    parts = report.nodeid.split("/")
    tier = parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"
    _TIER_SECONDS[tier] = _TIER_SECONDS.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How long each tier took, so the suite's growth is seen per tier (docs/developers.md: Tests)."""
    if _TIER_SECONDS:
        summary = ", ".join(f"{tier} {seconds:.0f} s" for tier, seconds in sorted(_TIER_SECONDS.items()))
        terminalreporter.write_line(f"time per tier: {summary}")
