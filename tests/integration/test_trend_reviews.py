"""Root-cause trends against the real PostgreSQL: the review timer, reopens, two instances, the read's window."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.trend_store import PostgresTrendStore, PostgresTrendTransaction
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.app.trends import review_due_trends
from service.bootstrap import Service, SystemClock, intake_rules
from service.config import Settings
from service.domain.intake import Outcome
from service.domain.signals import Signal, SignalKind
from service.domain.trends import TrendPolicy, trend_stream
from service.trend_worker import review_trends_forever
from tests.integration.api_only import api_over
from tests.support import MANAGER, eventually, suite_keyring

THRESHOLD = 3
POLICY = TrendPolicy(THRESHOLD, timedelta(days=90))
TAG = "scheduling"


@pytest.fixture
async def api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_over(pool, database_url, trend_threshold=THRESHOLD) as client:
        yield client


async def open_case(api: httpx.AsyncClient, customer: str) -> str:
    body = {"customer_id": customer, "severity": "minor", "reason": "escalated by hand"}
    opened = await api.post("/v1/cases", json=body, headers=MANAGER)
    assert opened.status_code == 201, opened.text
    case_id: str = opened.json()["case_id"]
    return case_id


async def resolve(api: httpx.AsyncClient, case_id: str) -> None:
    body = {"resolution_type": "apology_only", "root_cause": TAG, "prevention_action": "buffers"}
    answer = await api.post(f"/v1/cases/{case_id}/resolve", json=body, headers=MANAGER)
    assert answer.status_code == 200, answer.text


async def resolved_cases(api: httpx.AsyncClient, n: int, first: int = 0) -> list[str]:
    case_ids = []
    for i in range(first, first + n):
        case_id = await open_case(api, f"trend-{i}")
        await resolve(api, case_id)
        case_ids.append(case_id)
    return case_ids


async def published(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The trend events in the log, in order: what the relay publishes, once each."""
    rows = await pool.fetch(
        "SELECT data FROM events WHERE stream_id = $1 ORDER BY version", trend_stream(TAG)
    )
    return [json.loads(r["data"]) for r in rows]


async def trend_row(pool: asyncpg.Pool) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT active, crossings, due_at, due_at <= now() AS due FROM rootcause_trends WHERE tag = $1", TAG
    )
    assert row is not None
    return row


async def move_to_window_edge(pool: asyncpg.Pool, case_ids: list[str], seconds_left: float) -> None:
    """Resolved so long ago that they leave the trend window in `seconds_left` (by the database's clock)."""
    await pool.execute(
        "UPDATE cases SET resolved_at = now() - make_interval(days => $2) + make_interval(secs => $3)"
        " WHERE case_id = ANY($1::text[])",
        case_ids,
        POLICY.window.days,
        seconds_left,
    )


@asynccontextmanager
async def trend_loop(pool: asyncpg.Pool) -> AsyncIterator[None]:
    task = asyncio.create_task(review_trends_forever(PostgresTrendStore(pool), POLICY, idle_seconds=0.05))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_trend_ends_when_its_oldest_cases_leave_the_window_and_its_next_crossing_is_published(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    oldest = await resolved_cases(api, 2)
    await move_to_window_edge(pool, oldest, seconds_left=2)
    await resolved_cases(api, 1, first=2)
    assert [e["count"] for e in await published(pool)] == [3]
    row = await trend_row(pool)
    assert row["active"] and not row["due"]  # armed for when the oldest of the three leaves

    async with trend_loop(pool):

        async def ended() -> bool:
            return not (await trend_row(pool))["active"]

        await eventually(ended, timeout=20, what="the trend to end as its oldest case left the window")
        assert (await trend_row(pool))["due_at"] is None  # below the threshold: nothing more to wait for
        await resolved_cases(api, 2, first=3)
    events = await published(pool)
    assert [e["count"] for e in events] == [3, 3]
    assert set(events[1]["case_ids"]) & set(oldest) == set()


@pytest.mark.parametrize(
    ("command", "body"),
    [("reopen", {"reason": "the fix did not hold"}), ("follow-up", {"satisfied": False})],
)
async def test_a_staff_reopen_below_the_threshold_ends_the_trend_at_once(
    pool: asyncpg.Pool, api: httpx.AsyncClient, command: str, body: dict[str, Any]
) -> None:
    case_ids = await resolved_cases(api, 3)
    assert (await trend_row(pool))["active"]
    answer = await api.post(f"/v1/cases/{case_ids[-1]}/{command}", json=body, headers=MANAGER)
    assert answer.status_code == 200, answer.text
    assert not (await trend_row(pool))["active"]
    read = (await api.get("/v1/trends/root-causes", headers=MANAGER)).json()
    assert read["tags"] == [{"tag": TAG, "count": 2, "trend": False}]
    await resolve(api, case_ids[-1])
    assert [e["count"] for e in await published(pool)] == [3, 3]


def nps(customer: str) -> Signal:
    now = datetime.now(UTC)
    return Signal(
        source="survey",
        id=f"nps-{customer}",
        kind=SignalKind.NPS,
        occurred_at=now,
        received_at=now,
        customer_id=customer,
        score=1,
    )


async def test_a_signal_that_reopens_a_resolved_case_has_its_tag_reviewed_by_the_loop(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    case_ids = await resolved_cases(api, 3)
    result = await apply_signals(
        [nps("trend-0")],
        {},
        "g",
        PostgresIntakeStore(pool, suite_keyring()),
        intake_rules(Settings()),
        VaderSentiment(),
        SystemClock(),
    )
    assert [(a.outcome, a.case_id) for a in result.applied] == [(Outcome.REOPENED, case_ids[0])]
    row = await trend_row(pool)
    assert row["active"] and row["due"]  # intake only marks the tag: the count is the loop's to take
    reviewed = await review_due_trends(PostgresTrendStore(pool), POLICY, 10)
    assert [(r.tag, r.was_trend, r.is_trend, r.event) for r in reviewed] == [(TAG, True, False, None)]
    row = await trend_row(pool)
    assert not row["active"] and row["due_at"] is None
    await resolve(api, case_ids[0])
    assert [e["count"] for e in await published(pool)] == [3, 3]


class HeldTrendStore(PostgresTrendStore):
    """Holds its transaction open after claiming, until the test lets it go on."""

    def __init__(self, pool: asyncpg.Pool, claimed: asyncio.Event, proceed: asyncio.Event) -> None:
        super().__init__(pool)
        self.claimed, self.proceed = claimed, proceed

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTrendTransaction]:
        async with super().transaction() as tx:
            original = tx.claim_due

            async def claim_due(limit: int) -> list[str]:
                tags = await original(limit)
                self.claimed.set()
                await self.proceed.wait()
                return tags

            tx.claim_due = claim_due  # type: ignore[method-assign]
            yield tx


async def waiting_for_a_lock(pool: asyncpg.Pool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second instance never waited for the first")


async def test_two_instances_reviewing_one_due_tag_at_once_publish_one_event(
    pool: asyncpg.Pool, api: httpx.AsyncClient, database_url: str
) -> None:
    await resolved_cases(api, 3)
    # a crossing the stored state has not seen yet (as after a crash between count and record): due now
    await pool.execute("UPDATE rootcause_trends SET active = false, due_at = now() WHERE tag = $1", TAG)
    await pool.execute("DELETE FROM events WHERE stream_id = $1", trend_stream(TAG))
    await pool.execute("UPDATE rootcause_trends SET crossings = 0 WHERE tag = $1", TAG)
    claimed, proceed = asyncio.Event(), asyncio.Event()
    other = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        first = asyncio.create_task(review_due_trends(HeldTrendStore(pool, claimed, proceed), POLICY, 10))
        await asyncio.wait_for(claimed.wait(), 30)
        second = asyncio.create_task(review_due_trends(PostgresTrendStore(other), POLICY, 10))
        await waiting_for_a_lock(pool)
        proceed.set()
        reviews = await asyncio.wait_for(asyncio.gather(first, second), 30)
    finally:
        await other.close()
    assert [[r.tag for r in rs] for rs in reviews] == [[TAG], []]
    assert [e["count"] for e in await published(pool)] == [3]
    row = await trend_row(pool)
    assert row["active"] and row["crossings"] == 1 and not row["due"]


async def test_an_interrupted_review_leaves_the_tag_due_and_the_next_one_does_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    case_ids = await resolved_cases(api, 3)
    await move_to_window_edge(pool, case_ids[:1], seconds_left=-1)
    await pool.execute("UPDATE rootcause_trends SET due_at = now() WHERE tag = $1", TAG)
    with pytest.raises(RuntimeError):
        async with PostgresTrendStore(pool).transaction() as tx:
            assert await tx.claim_due(10) == [TAG]
            raise RuntimeError("the instance died")
    assert (await trend_row(pool))["due"]
    reviewed = await review_due_trends(PostgresTrendStore(pool), POLICY, 10)
    assert [(r.tag, r.is_trend) for r in reviewed] == [(TAG, False)]


async def test_the_read_counts_and_judges_the_window_asked_for(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    case_ids = await resolved_cases(api, 3)
    await pool.execute(
        "UPDATE cases SET resolved_at = now() - interval '10 days' WHERE case_id = ANY($1::text[])",
        case_ids[:2],
    )

    async def read(**params: int) -> dict[str, Any]:
        answer = await api.get("/v1/trends/root-causes", params=params, headers=MANAGER)
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        return body

    assert await read(window_days=7) == {
        "window_days": 7,
        "threshold": THRESHOLD,
        "tags": [{"tag": TAG, "count": 1, "trend": False}],
    }
    assert (await read(window_days=30))["tags"] == [{"tag": TAG, "count": 3, "trend": True}]
    default = await read()
    assert default["window_days"] == POLICY.window.days and default["tags"][0]["trend"] is True


async def test_a_relaying_process_runs_the_trend_loop(pool: asyncpg.Pool, database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        relay=True,
        consume=False,
        kafka_bootstrap_servers="127.0.0.1:9",  # nobody: the Kafka side waits in the background
        trend_threshold=THRESHOLD,
    )
    service = Service(settings)
    await service.start()
    try:
        assert "trend-reviews" in {t.get_name() for t in service.tasks}
        await pool.execute(
            "INSERT INTO rootcause_trends (tag, active, crossings, due_at) VALUES ($1, true, 1, now())", TAG
        )

        async def reviewed() -> bool:
            row = await trend_row(pool)
            return not row["active"] and row["due_at"] is None

        await eventually(reviewed, timeout=20, what="the running service to review the due tag")
    finally:
        await service.stop()
