"""Console sessions (table console_sessions): started at sign-in, found on every console request, ended by
sign-out, by an owner, or by time.

The store holds digests only; the HTTP adapter (console/session.py) keys them. A session is live while it was
seen within the idle timeout and its absolute lifetime has not run out. Seeing it moves `seen_at`, at most once
per TOUCH_EVERY, so a busy console writes a row a minute rather than one per request (the idle timeout is
therefore met up to TOUCH_EVERY early). `now` is the caller's clock, so a test can move time. Sign-in purges
rows that are no longer live, and keeps an actor's MAX_SESSIONS_PER_ACTOR newest sessions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from service.app.ports import SessionTimeouts

TOUCH_EVERY = timedelta(minutes=1)
MAX_SESSIONS_PER_ACTOR = 20

_PURGE = "DELETE FROM console_sessions WHERE seen_at <= $1 OR expires_at <= $2"
_START = """
INSERT INTO console_sessions (id_digest, token_digest, actor, created_at, seen_at, expires_at)
VALUES ($1, $2, $3, $4, $4, $5)
"""
_KEEP_NEWEST = """
DELETE FROM console_sessions WHERE actor = $1 AND id_digest NOT IN
    (SELECT id_digest FROM console_sessions WHERE actor = $1 ORDER BY created_at DESC LIMIT $2)
"""
_FIND = "SELECT token_digest, seen_at FROM console_sessions WHERE id_digest = $1 AND seen_at > $2 AND expires_at > $3"
_TOUCH = "UPDATE console_sessions SET seen_at = $2 WHERE id_digest = $1 AND seen_at < $2"


class PostgresConsoleSessions:
    def __init__(self, pool: asyncpg.Pool, timeouts: SessionTimeouts) -> None:
        self._pool, self._timeouts = pool, timeouts

    async def start(self, id_digest: bytes, token_digest: bytes, actor: str, now: datetime) -> None:
        """A new session of the actor; ended ones go, and the actor's oldest beyond the bound."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_PURGE, now - self._timeouts.idle, now)
            await conn.execute(_START, id_digest, token_digest, actor, now, now + self._timeouts.lifetime)
            await conn.execute(_KEEP_NEWEST, actor, MAX_SESSIONS_PER_ACTOR)

    async def find(self, id_digest: bytes, now: datetime) -> bytes | None:
        """The token digest of a live session (None when there is none), extending its idle timeout."""
        row = await self._pool.fetchrow(_FIND, id_digest, now - self._timeouts.idle, now)
        if row is None:
            return None
        if row["seen_at"] <= now - TOUCH_EVERY:
            await self._pool.execute(_TOUCH, id_digest, now)
        return bytes(row["token_digest"])

    async def end(self, id_digest: bytes) -> None:
        await self._pool.execute("DELETE FROM console_sessions WHERE id_digest = $1", id_digest)

    async def end_all_of(self, actor: str) -> int:
        """Ends every session of the actor at once; answers how many there were."""
        status = await self._pool.execute("DELETE FROM console_sessions WHERE actor = $1", actor)
        return int(status.split()[-1])
