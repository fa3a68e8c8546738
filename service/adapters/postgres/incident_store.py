"""The incident commands' store (app/incidents.py) on PostgreSQL: the incident's row and stream, and the
intake's reads and writes for the cases that join it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from service.adapters.postgres.case_writes import append_events
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.errors import store_transaction
from service.adapters.postgres.intake_store import PostgresIntakeTransaction
from service.domain.incidents import INCIDENT_STATE, IncidentEvent, IncidentState, incident_stream
from service.domain.intake import NewEvent


class PostgresIncidentTransaction(PostgresIntakeTransaction):
    async def now(self) -> datetime:
        return await self._conn.fetchval("SELECT now()")  # type: ignore[no-any-return]

    async def incident(self, incident_id: str) -> IncidentState | None:
        state = await self._conn.fetchval(
            "SELECT state FROM incidents WHERE incident_id = $1 FOR UPDATE", incident_id
        )
        return None if state is None else INCIDENT_STATE.validate_json(state)

    async def record_incident(self, events: Sequence[IncidentEvent], state: IncidentState) -> None:
        await self._conn.execute(
            "INSERT INTO incidents (incident_id, scope_key, status, opened_at, version, state)"
            " VALUES ($1, $2, $3, $4, $5, $6::json) ON CONFLICT (incident_id) DO UPDATE SET"
            " status = EXCLUDED.status, version = EXCLUDED.version, state = EXCLUDED.state",
            state.incident_id,
            state.scope_key,
            state.status,
            state.opened_at,
            state.version,
            INCIDENT_STATE.dump_json(state).decode(),
        )
        first = state.version - len(events) + 1
        stream = incident_stream(state.incident_id)
        await append_events(self._conn, [NewEvent(stream, first + i, e) for i, e in enumerate(events)])


class PostgresIncidentStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresIncidentTransaction]:
        async with store_transaction(self._pool) as conn:
            yield PostgresIncidentTransaction(conn, self._keyring)
