"""The event log read in order for the outgoing relay, and the lease that lets one instance publish."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from service.adapters.postgres import parking
from service.adapters.postgres.case_writes import Connection
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.erasure import ERASURE_TYPE, forget_published_erasures
from service.adapters.postgres.parking import OpenStream, Parked
from service.adapters.postgres.sealing import Opener
from service.app.ports import LoggedEvent

_LEASE_CLASS = 0x5245_4C59  # "RELY": the two-key advisory locks of relays, apart from the migration lock


class RelayLease:
    """Held while this instance's session keeps the advisory lock; the position moves on the same session.

    Given the keyring (RECOVERY_PUBLISH_FREE_TEXT), it opens the personal texts of the events it reads, to be
    published; without, it hands them on sealed, and the outgoing mapping nulls them."""

    def __init__(self, conn: Connection, name: str, keyring: Keyring | None = None) -> None:
        self._conn = conn
        self.name = name
        self._keyring = keyring
        self._erasures: list[int] = []  # erasure events of the batch read last: their customer id is forgotten
        # once they are published (erasure.py)

    async def _outgoing(self, events: list[LoggedEvent]) -> list[LoggedEvent]:
        if self._keyring is None:
            return events
        opener = await Opener.for_texts(self._conn, self._keyring, [e.data for e in events])
        return [_with_data(e, opener.event_json) for e in events]

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
            "SELECT position, stream_id, version, event_id::text, type, data::text, recorded_at, traceparent,"
            " schema_version FROM events"
            " WHERE position > $1 ORDER BY position LIMIT $2",
            position,
            limit,
        )
        events = [LoggedEvent(*r) for r in rows]  # the columns in the field order
        self._erasures = [e.position for e in events if e.type == ERASURE_TYPE]
        return await self._outgoing(events)

    async def advance(self, position: int, parked: Sequence[Parked] = ()) -> None:
        """Move the position past a published batch, parking the batch's held-back events with it."""
        held = {p.position for p in parked}
        published = [p for p in self._erasures if p <= position and p not in held]
        if not parked and not published:
            await self._move(position)
            return
        async with self._conn.transaction():
            await parking.park(self._conn, self.name, parked)
            await self._move(position)
            await forget_published_erasures(self._conn, published)

    async def _move(self, position: int) -> None:
        await self._conn.execute(
            "UPDATE relay_positions SET position = $2 WHERE name = $1", self.name, position
        )

    async def head(self) -> int:
        return int(await self._conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))

    async def open_streams(self) -> dict[str, OpenStream]:
        return await parking.open_streams(self._conn, self.name)

    @asynccontextmanager
    async def releasing(self, stream_id: str) -> AsyncIterator[list[LoggedEvent]]:
        """A case's parked events, locked in one transaction while the relay publishes and settles them."""
        async with self._conn.transaction():
            yield await self._outgoing(await parking.lock_open_events(self._conn, self.name, stream_id))

    async def published(self, positions: Sequence[int]) -> None:
        await parking.mark_published(self._conn, self.name, positions)
        await forget_published_erasures(self._conn, positions)

    async def park_again(self, fault: Parked, behind: Sequence[int]) -> None:
        await parking.park_again(self._conn, self.name, fault, behind)


def _with_data(event: LoggedEvent, change: Callable[[str, str], str]) -> LoggedEvent:
    """The event with its data changed; data that is not JSON is left for the outgoing mapping to park."""
    try:
        return dataclasses.replace(event, data=change(event.type, event.data))
    except (ValueError, RecursionError):
        return event


class PostgresEventFeed:
    """With a keyring, the relay publishes personal free text (opened); without, it publishes none."""

    def __init__(self, pool: asyncpg.Pool, keyring: Keyring | None = None) -> None:
        self._pool = pool
        self._keyring = keyring
        self.publishes_free_text = keyring is not None

    @asynccontextmanager
    async def lease(self, name: str) -> AsyncIterator[RelayLease | None]:
        """The lease if no other session holds it (None otherwise); a dead holder's session frees it.

        The lease holds one pooled connection for as long as this instance leads. When leading ends on an
        error (the server restarted, the network dropped, the task was cancelled) that connection is
        terminated instead of unlocked: its session ends, which frees the lock even when the connection is
        broken, and the pool opens a fresh one instead of handing the broken one out again.
        """
        conn = await self._pool.acquire()
        try:
            held = await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LEASE_CLASS, name)
        except BaseException:
            await self._discard(conn)
            raise
        if not held:
            await self._pool.release(conn)
            yield None
            return
        try:
            yield RelayLease(conn, name, self._keyring)
        except BaseException:
            await self._discard(conn)
            raise
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LEASE_CLASS, name)
        await self._pool.release(conn)

    async def _discard(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        conn.terminate()
        await self._pool.release(conn)
