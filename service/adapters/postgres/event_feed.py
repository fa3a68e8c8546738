"""The event log read in order for the outgoing relay, and the lease that lets one instance publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from service.adapters.postgres.case_writes import Connection
from service.app.ports import LoggedEvent

_LEASE_CLASS = 0x5245_4C59  # "RELY": the two-key advisory locks of relays, apart from the migration lock


class RelayLease:
    """Held while this instance's session keeps the advisory lock; the position moves on the same session."""

    def __init__(self, conn: Connection, name: str) -> None:
        self._conn = conn
        self.name = name

    async def position(self) -> int:
        await self._conn.execute(
            "INSERT INTO relay_positions (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
            self.name,
        )
        return int(
            await self._conn.fetchval("SELECT position FROM relay_positions WHERE name = $1", self.name)
        )

    async def read_after(self, position: int, limit: int) -> list[LoggedEvent]:
        """Events past the position, in order; appends commit in position order, so none can appear behind it."""
        rows = await self._conn.fetch(
            "SELECT position, stream_id, version, event_id::text, type, data::text, recorded_at FROM events"
            " WHERE position > $1 ORDER BY position LIMIT $2",
            position,
            limit,
        )
        return [LoggedEvent(*r) for r in rows]  # the columns in the dataclass's field order

    async def advance(self, position: int) -> None:
        await self._conn.execute(
            "UPDATE relay_positions SET position = $2 WHERE name = $1", self.name, position
        )

    async def head(self) -> int:
        return int(await self._conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))


class PostgresEventFeed:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def lease(self, name: str) -> AsyncIterator[RelayLease | None]:
        """The lease if no other session holds it (None otherwise); a dead holder's session frees it."""
        async with self._pool.acquire() as conn:
            held = await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LEASE_CLASS, name)
            if not held:
                yield None
                return
            try:
                yield RelayLease(conn, name)
            finally:
                if not conn.is_closed():
                    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LEASE_CLASS, name)
