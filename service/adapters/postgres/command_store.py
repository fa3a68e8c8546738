"""PostgreSQL side of staff commands: the case snapshot, the append, and remembered answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from service.adapters.postgres.case_reads import signals_of
from service.adapters.postgres.case_writes import Connection, append_events, save_cases, save_timers
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.errors import store_transaction
from service.adapters.postgres.sealing import Opener, Sealer
from service.adapters.postgres.trend_store import TrendRecords
from service.app.commands import Remembered
from service.domain.case import CaseState, evolve
from service.domain.compensation import CompensationHistory
from service.domain.intake import NewEvent
from service.domain.registry import SNAPSHOT, read_case_event
from service.domain.timers import Timer

_SEALED_BODY = "sealed_body"
"""The one field of an answer remembered by an earlier release, stored sealed: its HTTP body's JSON."""

# Transaction-scoped advisory lock classes (the first key; the second is a hash of the name): "COMC", "COMA"
CUSTOMER_LOCK = 0x434F_4D43
_ACTOR_LOCK = 0x434F_4D41

Committed = Callable[[CaseState | None, CaseState], None]
"""Told of each case a command changed, before and after, once its transaction has committed."""


class PostgresCommandTransaction(TrendRecords):
    """Cases are read opened (the deciders and the answers see the texts) and written sealed; an
    Idempotency-Key is remembered with the case and version its command left, which hold no text."""

    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring
        self._read: dict[str, CaseState] = {}
        self.changed: list[tuple[CaseState | None, CaseState]] = []

    async def prior_answer(self, actor: str, target: str, key: str) -> tuple[str, Remembered] | None:
        row = await self._conn.fetchrow(
            "SELECT command, target, case_id, version, opened, status, body, answered_at FROM command_answers"
            " WHERE actor = $1 AND target = $2 AND key = $3",
            actor,
            target,
            key,
        )
        if row is None:
            return None
        if row["case_id"] is not None:
            return row["command"], Remembered(
                row["case_id"], row["version"], row["opened"], row["answered_at"]
            )
        return row["command"], await _from_body(self._conn, self._keyring, row)

    async def case_at(self, case_id: str, version: int | None) -> CaseState | None:
        if version is None:
            return await self.case(case_id)
        rows = await self._conn.fetch(
            "SELECT type, schema_version, data::text FROM events WHERE stream_id = $1 AND version <= $2"
            " ORDER BY version",
            case_id,
            version,
        )
        opener = await Opener.for_texts(self._conn, self._keyring, [r["data"] for r in rows])
        state = None
        for type_, schema_version, data in rows:
            state = evolve(state, opener.value(read_case_event(type_, schema_version, data)))
        return state

    async def case(self, case_id: str) -> CaseState | None:
        row = await self._conn.fetchrow("SELECT state, state_version FROM cases WHERE case_id = $1", case_id)
        if row is None:
            return None
        self._read[case_id] = state = await self._opened(row["state_version"], row["state"])
        return state

    async def latest_case(self, customer_id: str) -> CaseState | None:
        row = await self._conn.fetchrow(
            "SELECT state, state_version FROM cases WHERE customer_id = $1 ORDER BY ordinal DESC LIMIT 1",
            customer_id,
        )
        return None if row is None else await self._opened(row["state_version"], row["state"])

    async def _opened(self, version: int, text: str) -> CaseState:
        opener = await Opener.for_texts(self._conn, self._keyring, [text])
        return opener.value(SNAPSHOT.read(version, text))

    async def now(self) -> datetime:
        return await self._conn.fetchval("SELECT now()")  # type: ignore[no-any-return]

    async def signals(self, case_id: str) -> list[Any]:
        return (await signals_of(self._conn, [case_id], self._keyring)).get(case_id, [])

    async def compensation_history(
        self, case: CaseState, actor: str, actor_since: datetime
    ) -> CompensationHistory:
        # customer, then actor: every request takes the two in this order, so two never wait on each other
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", CUSTOMER_LOCK, case.customer_id
        )
        await self._conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _ACTOR_LOCK, actor)
        customer = await self._conn.fetch(
            "SELECT state, state_version FROM cases WHERE customer_id = $1 AND case_id <> $2",
            case.customer_id,
            case.case_id,
        )
        others = await self._conn.fetch(
            "SELECT state, state_version FROM cases WHERE case_id IN (SELECT stream_id FROM events"
            " WHERE type = 'case.compensation_requested' AND data->>'actor' = $1 AND recorded_at >= $2"
            " AND stream_id <> $3)",
            actor,
            actor_since,
            case.case_id,
        )
        return CompensationHistory(
            customer=tuple(
                c for row in customer for c in SNAPSHOT.read(row["state_version"], row["state"]).compensations
            ),
            actor=tuple(
                c
                for row in others
                for c in SNAPSHOT.read(row["state_version"], row["state"]).compensations
                if c.requested_by == actor
            ),
        )

    async def record(
        self, events: Sequence[NewEvent], case: CaseState, timers: Mapping[str, Sequence[Timer]]
    ) -> None:
        sealer = await Sealer.for_cases(self._conn, self._keyring, [case])
        await save_timers(self._conn, timers)
        await save_cases(self._conn, [sealer.state(case)])
        await append_events(self._conn, sealer.events(events))
        self.changed.append((self._read.get(case.case_id), case))

    async def remember(self, actor: str, target: str, key: str, command: str, result: Remembered) -> None:
        # the same key, concurrently: a unique violation, so the command is decided again and finds this answer
        await self._conn.execute(
            "INSERT INTO command_answers (actor, target, key, command, case_id, version, opened, answered_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            actor,
            target,
            key,
            command,
            result.case_id,
            result.version,
            result.opened,
            result.at,
        )


async def _from_body(conn: Connection, keyring: Keyring, row: asyncpg.Record) -> Remembered:
    """An answer remembered by an earlier release, with its HTTP body: the case id and version it showed (a body
    without them, e.g. erased: the target's case, as it is now)."""
    body = json.loads(row["body"])
    if isinstance(body, dict) and isinstance(body.get(_SEALED_BODY), str):
        opener = await Opener.for_texts(conn, keyring, [body[_SEALED_BODY]])
        body = json.loads(opener.text(body[_SEALED_BODY]) or "{}")
    case_id = body.get("case_id") if isinstance(body, dict) else None
    version = body.get("version") if isinstance(body, dict) else None
    return Remembered(
        case_id if isinstance(case_id, str) else row["target"],
        version if isinstance(version, int) else None,
        row["status"] == 201,
        row["answered_at"],
    )


async def upgrade_answers(conn: Connection, keyring: Keyring, targets: Sequence[str]) -> None:
    """The answers to these targets still remembered with their HTTP body (before migration 021) rewritten as
    their domain result, their body dropped: an erasure does it while the customer's key can still open them."""
    rows = await conn.fetch(
        "SELECT actor, target, key, status, body, answered_at FROM command_answers"
        " WHERE target = ANY($1::text[]) AND case_id IS NULL",
        list(targets),
    )
    for row in rows:
        result = await _from_body(conn, keyring, row)
        await conn.execute(
            "UPDATE command_answers SET case_id = $4, version = $5, opened = $6, body = NULL"
            " WHERE actor = $1 AND target = $2 AND key = $3",
            row["actor"],
            row["target"],
            row["key"],
            result.case_id,
            result.version,
            result.opened,
        )


class PostgresCommandStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring, committed: Committed | None = None) -> None:
        self._pool = pool
        self._keyring = keyring
        self._committed = committed

    async def case_for_request(self, request_id: str) -> str | None:
        """The case that asked for this compensation."""
        return await self._pool.fetchval(  # type: ignore[no-any-return]
            "SELECT stream_id FROM events WHERE type = 'case.compensation_requested'"
            " AND data->>'request_id' = $1 LIMIT 1",
            request_id,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresCommandTransaction]:
        async with store_transaction(self._pool) as conn:
            tx = PostgresCommandTransaction(conn, self._keyring)
            yield tx
        if self._committed is not None:
            for before, after in tx.changed:
                self._committed(before, after)
