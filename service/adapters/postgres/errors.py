"""Translate driver errors into the project's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from service.domain.errors import ConcurrencyConflict

# A lost race: someone appended the same stream version, applied the same signal or opened the case.
CONFLICTS: tuple[type[Exception], ...] = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
# The database is briefly away: wait and try again, never skip.
TRANSIENT: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


@asynccontextmanager
async def store_transaction(pool: asyncpg.Pool) -> AsyncIterator[Any]:
    """One transaction on a pooled connection, the one place a lost race becomes the app's ConcurrencyConflict:
    raised anywhere in it, its commit included (the use case then decides again, app/conflicts.py)."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except CONFLICTS as e:
        raise ConcurrencyConflict(type(e).__name__) from e
