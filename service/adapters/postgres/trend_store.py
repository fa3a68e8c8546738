"""Root-cause trends in PostgreSQL: a tag's resolved cases, its state, and its durable review timer.

Lock order, shared by every writer: case rows, then the append lock, then trend rows. Commands and the intake
append their case events before they touch a trend row; the review loop takes the append lock before it claims
trend rows. So no two of them ever wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from service.adapters.postgres.case_writes import Connection, append_events, lock_appends
from service.adapters.postgres.errors import store_transaction
from service.domain.intake import NewEvent


async def resolved_with(conn: Connection, root_cause: str, since: datetime) -> dict[str, datetime]:
    """The cases resolved with this tag since then (closed ones too), with when they were resolved."""
    rows = await conn.fetch(
        "SELECT case_id, resolved_at FROM cases WHERE root_cause = $1 AND resolved_at >= $2"
        " AND status <> 'open'",
        root_cause,
        since,
    )
    return {r["case_id"]: r["resolved_at"] for r in rows}


async def trend_state(conn: Connection, tag: str) -> tuple[bool, int]:
    """Whether the tag is a trend, and how many crossings it has had (its stream's version); row locked."""
    row = await conn.fetchrow("SELECT active, crossings FROM rootcause_trends WHERE tag = $1 FOR UPDATE", tag)
    return (False, 0) if row is None else (row["active"], row["crossings"])


async def record_trend(
    conn: Connection, tag: str, event: NewEvent | None, active: bool, due_at: datetime | None
) -> None:
    """The tag's new state and next review; a crossing's event is appended to the tag's stream."""
    await conn.execute(
        "INSERT INTO rootcause_trends (tag, active, crossings, crossed_at, due_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (tag) DO UPDATE SET active = EXCLUDED.active, due_at = EXCLUDED.due_at,"
        " crossings = rootcause_trends.crossings + $3, crossed_at = coalesce($4, rootcause_trends.crossed_at)",
        tag,
        active,
        1 if event else 0,
        event.event.at if event else None,
        due_at,
    )
    if event is not None:
        await append_events(conn, [event])


async def mark_trends_due(conn: Connection, tags: Collection[str]) -> None:
    """Ask the review loop to look at these tags now (a reopen lowered their count); only a tag that is a
    trend can fall below its threshold, so the others are left alone. Call it after the events' append."""
    await conn.execute(
        "UPDATE rootcause_trends SET due_at = now() WHERE tag = ANY($1::text[]) AND active",
        sorted(tags),
    )


class TrendRecords:
    """A tag's trend state and its resolved cases, on the transaction's connection: what a trend review
    needs, whether a command's (after a resolve or a reopen) or the review loop's."""

    _conn: Connection

    async def resolved_with(self, root_cause: str, since: datetime) -> dict[str, datetime]:
        return await resolved_with(self._conn, root_cause, since)

    async def trend(self, tag: str) -> tuple[bool, int]:
        return await trend_state(self._conn, tag)

    async def record_trend(
        self, tag: str, event: NewEvent | None, active: bool, due_at: datetime | None
    ) -> None:
        await record_trend(self._conn, tag, event, active, due_at)


class PostgresTrendTransaction(TrendRecords):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def claim_due(self, limit: int) -> list[str]:
        """Up to `limit` tags due by the database's clock, locked; an idle poll takes no lock at all."""
        due = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM rootcause_trends WHERE due_at <= now())"
        )
        if not due:
            return []
        await lock_appends(self._conn)
        rows = await self._conn.fetch(
            "SELECT tag FROM rootcause_trends WHERE due_at <= now() ORDER BY due_at, tag LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [r["tag"] for r in rows]

    async def now(self) -> datetime:
        return await self._conn.fetchval("SELECT now()")  # type: ignore[no-any-return]


class PostgresTrendStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTrendTransaction]:
        async with store_transaction(self._pool) as conn:
            yield PostgresTrendTransaction(conn)
