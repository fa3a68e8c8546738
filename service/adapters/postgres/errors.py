"""Translate driver errors into the project's own."""

from __future__ import annotations

import asyncpg

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
