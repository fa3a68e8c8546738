"""The event log's append lock against the real PostgreSQL: late commits stay in order; vacuum stalls nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg

from service.adapters.postgres.case_writes import append_events
from service.adapters.postgres.event_feed import RelayLease
from service.domain.events import CaseAssigned
from service.domain.intake import NewEvent


def assigned(case_id: str) -> NewEvent:
    return NewEvent(case_id, 1, CaseAssigned(case_id=case_id, at=datetime.now(UTC), actor="a", owner="o"))


async def waiting_for_a_lock(pool: asyncpg.Pool, pid: asyncio.Future[int], timeout: float = 30.0) -> None:
    """Until the session with that backend pid waits for a lock."""
    backend = await asyncio.wait_for(pid, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", backend):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second append never waited for the first")


async def test_an_append_that_commits_late_is_never_passed_over_by_a_reader(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as reader_conn:
        reader = RelayLease(reader_conn, "test")
        async with pool.acquire() as early:
            slow = early.transaction()
            await slow.start()
            await append_events(early, [assigned("case-early")])  # its position is taken, not yet visible

            pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            async def later() -> None:
                async with pool.acquire() as conn, conn.transaction():
                    pid.set_result(conn.get_server_pid())
                    await append_events(conn, [assigned("case-late")])

            second = asyncio.create_task(later())
            await waiting_for_a_lock(pool, pid)
            assert await reader.read_after(0, 10) == []  # nothing is visible past a position still in flight
            await slow.commit()
            await asyncio.wait_for(second, 30)
        events = await reader.read_after(0, 10)
    assert [e.stream_id for e in events] == ["case-early", "case-late"]
    assert events[0].position < events[1].position


async def test_an_append_does_not_wait_for_a_vacuum_of_the_log(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as maintenance, maintenance.transaction():
        # the lock VACUUM, autovacuum and ANALYZE hold on a table for their whole run
        await maintenance.execute("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
        async with pool.acquire() as conn, conn.transaction():
            await asyncio.wait_for(append_events(conn, [assigned("case-during-vacuum")]), 30)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = 'case-during-vacuum'") == 1
