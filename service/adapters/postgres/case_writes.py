"""Writes every transaction that changes cases shares: timers, the case read model, the event append.

Order inside a transaction matters: timers, then cases, then (last, under the append lock) events. The
timer firing takes rows in the same order, so the two never wait on each other in a cycle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from service.domain.case import CASE_STATE, CaseState, awaiting_approval, next_deadline
from service.domain.intake import NewEvent
from service.domain.registry import SNAPSHOT, event_shape
from service.domain.timers import Timer

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
_EVENT_NAMESPACE = uuid.UUID("0b7e2c4e-8f5d-4a3b-9d61-2c8f7a9e1d42")
_VARIANT = "89ab"  # RFC 4122: the two top bits of the clock sequence are 10
# Appends serialise on a transaction-scoped advisory lock, not LOCK TABLE events IN EXCLUSIVE MODE: that
# table lock conflicts with the SHARE UPDATE EXCLUSIVE lock of (auto)vacuum and analyze, so every vacuum
# of the log stalled all appends (up to deadlock_timeout; for the whole run of an anti-wraparound one).
_APPEND_LOCK = (0x4556_4E54, 0)  # "EVNT": two keys, apart from the migration lock and the relay leases


def event_id(stream_id: str, version: int) -> str:
    """An event's id follows from its place in its stream: a re-run can never mint a second one.

    uuid5(namespace, "stream/version") in its text form, spelled out: uuid.uuid5 costs three times as much.
    """
    h = hashlib.sha1(_EVENT_NAMESPACE.bytes + f"{stream_id}/{version}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


# Batches travel by binary COPY: for thousands of rows it costs a fraction of the client CPU that array
# parameters to unnest() do. Upserts go through session-local staging tables, emptied at every commit.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_timers (case_id text, sla text, kind text, deadline timestamptz,"
    " due_at timestamptz) ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS stage_cases (case_id text, customer_id text, ordinal int, status text,"
    " severity text, owner text, opened_at timestamptz, first_response_deadline timestamptz,"
    " resolution_deadline timestamptz, version int, state json, root_cause text, resolved_at timestamptz,"
    " state_version smallint, next_deadline timestamptz, awaiting_approval boolean, incident_id text)"
    " ON COMMIT DELETE ROWS"
)
_TIMER_COLUMNS = ["case_id", "sla", "kind", "deadline", "due_at"]
CASE_COLUMNS = [
    "case_id",
    "customer_id",
    "ordinal",
    "status",
    "severity",
    "owner",
    "opened_at",
    "first_response_deadline",
    "resolution_deadline",
    "version",
    "state",
    "root_cause",
    "resolved_at",
    "state_version",
    "next_deadline",
    "awaiting_approval",
    "incident_id",
]
_EVENT_COLUMNS = ["stream_id", "version", "event_id", "type", "data", "traceparent", "schema_version"]


async def _stage(conn: Connection, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """Rows into this session's staging table, which empties itself when the transaction commits, and of
    the rows staged earlier in the same transaction (a second save there), in the same round trip."""
    assert conn.is_in_transaction(), "staged rows live until commit: stage inside a transaction"
    await conn.execute(f"{_STAGING}; DELETE FROM {table}")
    await conn.copy_records_to_table(table, records=records, columns=columns)


async def save_timers(conn: Connection, timers: Mapping[str, Sequence[Timer]]) -> None:
    """Replace the timers of these cases; a timer whose deadline moved is armed again."""
    if not timers:
        return
    rows = [t for ts in timers.values() for t in ts]  # the INSERT below orders them, as the timer firing does
    await _stage(
        conn, "stage_timers", _TIMER_COLUMNS, [(t.case_id, t.sla, t.kind, t.deadline, t.due_at) for t in rows]
    )
    await conn.execute(
        "DELETE FROM sla_timers t WHERE t.case_id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM"
        " stage_timers d WHERE (d.case_id, d.sla, d.kind) = (t.case_id, t.sla, t.kind))",
        list(timers),
    )
    if rows:
        await conn.execute(
            "INSERT INTO sla_timers (case_id, sla, kind, deadline, due_at) SELECT * FROM stage_timers"
            " ORDER BY case_id, sla, kind ON CONFLICT (case_id, sla, kind) DO UPDATE SET"
            " deadline = EXCLUDED.deadline, due_at = EXCLUDED.due_at, fired_at = CASE WHEN"
            " sla_timers.deadline = EXCLUDED.deadline THEN sla_timers.fired_at END"
        )


async def save_cases(conn: Connection, cases: Iterable[CaseState]) -> list[tuple[Any, ...]]:
    """Upsert the cases' rows; returns them (the intake remembers the snapshot text it wrote)."""
    rows = case_rows(cases)
    if not rows:
        return rows
    await _stage(conn, "stage_cases", CASE_COLUMNS, rows)
    # Cases leaving "open" go first (false sorts before true), so the one-open-case index never sees two.
    await conn.execute(
        "INSERT INTO cases (case_id, customer_id, ordinal, status, severity, owner, opened_at,"
        " first_response_deadline, resolution_deadline, version, state, root_cause, resolved_at, state_version,"
        " next_deadline, awaiting_approval, incident_id) SELECT * FROM stage_cases ORDER BY status = 'open', case_id"
        " ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status, severity = EXCLUDED.severity,"
        " owner = EXCLUDED.owner, first_response_deadline = EXCLUDED.first_response_deadline,"
        " resolution_deadline = EXCLUDED.resolution_deadline, version = EXCLUDED.version,"
        " state = EXCLUDED.state, root_cause = EXCLUDED.root_cause, resolved_at = EXCLUDED.resolved_at,"
        " state_version = EXCLUDED.state_version, next_deadline = EXCLUDED.next_deadline,"
        " awaiting_approval = EXCLUDED.awaiting_approval, incident_id = EXCLUDED.incident_id, updated_at = now()"
    )
    return rows


async def append_events(conn: Connection, events: Sequence[NewEvent]) -> None:
    """The last step of a transaction: positions are taken under the lock, held to commit, so they become
    visible in the order they were assigned and a reader never passes over one that commits late."""
    if not events:
        return
    rows = [_event_row(e) for e in events]
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_APPEND_LOCK)
    await conn.copy_records_to_table("events", records=rows, columns=_EVENT_COLUMNS)


def _event_row(e: NewEvent) -> tuple[Any, ...]:
    """One event's row: its JSON through its own type's adapter (the union's would try every member), and the
    schema version of that type's shape."""
    shape = event_shape(e.event.type)
    data = shape.adapter.dump_json(e.event).decode()
    return (
        e.stream_id,
        e.version,
        event_id(e.stream_id, e.version),
        e.event.type,
        data,
        e.traceparent,
        shape.version,
    )


async def lock_appends(conn: Connection) -> None:
    """Take the append lock now, held to commit, for a transaction that must not hold row locks an appender
    waits for while it waits for the lock itself (the trend review: appenders lock trend rows after it)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_APPEND_LOCK)


def case_rows(cases: Iterable[CaseState]) -> list[tuple[Any, ...]]:
    """The read model's rows for these cases, in CASE_COLUMNS order (the rebuild fills its shadow with them)."""
    return [
        (
            c.case_id,
            c.customer_id,
            c.ordinal,
            c.status,
            c.severity,
            c.owner,
            c.opened_at,
            c.first_response_deadline,
            c.resolution_deadline,
            c.version,
            CASE_STATE.dump_json(c).decode(),
            c.resolution.root_cause if c.resolution else None,
            c.resolution.resolved_at if c.resolution else None,
            SNAPSHOT.version,
            next_deadline(c),
            awaiting_approval(c),
            c.incident_id,
        )
        for c in cases
    ]
