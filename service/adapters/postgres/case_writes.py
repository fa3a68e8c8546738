"""Writes every transaction that changes cases shares: timers, the case read model, the event append.

Order inside a transaction matters: timers, then cases, then (last, under the table lock) events. The
timer firing takes rows in the same order, so the two never wait on each other in a cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from service.domain.case import CASE_STATE, CaseState, CaseStatus
from service.domain.intake import NewEvent
from service.domain.timers import Timer

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
_EVENT_NAMESPACE = uuid.UUID("0b7e2c4e-8f5d-4a3b-9d61-2c8f7a9e1d42")


def event_id(stream_id: str, version: int) -> uuid.UUID:
    """An event's id follows from its place in its stream: a re-run can never mint a second one."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{stream_id}/{version}")


async def save_timers(conn: Connection, timers: Mapping[str, Sequence[Timer]]) -> None:
    """Replace the timers of these cases; a timer whose deadline moved is armed again."""
    if not timers:
        return
    rows = sorted((t for ts in timers.values() for t in ts), key=lambda t: (t.case_id, t.sla, t.kind))
    columns = _timer_columns(rows)
    await conn.execute(
        "DELETE FROM sla_timers t WHERE t.case_id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM"
        " unnest($2::text[], $3::text[], $4::text[]) AS d(case_id, sla, kind)"
        " WHERE (d.case_id, d.sla, d.kind) = (t.case_id, t.sla, t.kind))",
        sorted(timers),
        *columns[:3],
    )
    if rows:
        await conn.execute(
            "INSERT INTO sla_timers (case_id, sla, kind, deadline, due_at) SELECT * FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) ON CONFLICT (case_id, sla, kind)"
            " DO UPDATE SET deadline = EXCLUDED.deadline, due_at = EXCLUDED.due_at, fired_at = CASE WHEN"
            " sla_timers.deadline = EXCLUDED.deadline THEN sla_timers.fired_at END",
            *columns,
        )


async def save_cases(conn: Connection, cases: Iterable[CaseState]) -> None:
    # Cases leaving "open" go first, so the one-open-case index never sees two at once.
    ordered = sorted(cases, key=lambda c: (c.status is CaseStatus.OPEN, c.case_id))
    if not ordered:
        return
    await conn.execute(
        "INSERT INTO cases (case_id, customer_id, ordinal, status, severity, owner, opened_at,"
        " first_response_deadline, resolution_deadline, version, state, root_cause, resolved_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],"
        " $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::int[], $11::json[], $12::text[],"
        " $13::timestamptz[])"
        " ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status, severity = EXCLUDED.severity,"
        " owner = EXCLUDED.owner, first_response_deadline = EXCLUDED.first_response_deadline,"
        " resolution_deadline = EXCLUDED.resolution_deadline, version = EXCLUDED.version,"
        " state = EXCLUDED.state, root_cause = EXCLUDED.root_cause, resolved_at = EXCLUDED.resolved_at,"
        " updated_at = now()",
        *_case_columns(ordered),
    )


async def append_events(conn: Connection, events: Sequence[NewEvent]) -> None:
    """The last step of a transaction: positions are taken under the lock, so they become visible in order."""
    if not events:
        return
    await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
    await conn.execute(
        "INSERT INTO events (stream_id, version, event_id, type, data)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::json[])",
        [e.stream_id for e in events],
        [e.version for e in events],
        [event_id(e.stream_id, e.version) for e in events],
        [e.event.type for e in events],
        [_json(e.event) for e in events],
    )


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _json(event: object) -> str:
    """One event's JSON through its own class's adapter (the union's adapter would try every member)."""
    adapter = _ADAPTERS.get(type(event))
    if adapter is None:
        adapter = _ADAPTERS[type(event)] = TypeAdapter(type(event))
    return adapter.dump_json(event).decode()


def _timer_columns(rows: Sequence[Timer]) -> list[list[object]]:
    return [
        [t.case_id for t in rows],
        [t.sla.value for t in rows],
        [t.kind.value for t in rows],
        [t.deadline for t in rows],
        [t.due_at for t in rows],
    ]


def _case_columns(cases: Sequence[CaseState]) -> list[list[object]]:
    return [
        [c.case_id for c in cases],
        [c.customer_id for c in cases],
        [c.ordinal for c in cases],
        [c.status.value for c in cases],
        [c.severity.value for c in cases],
        [c.owner for c in cases],
        [c.opened_at for c in cases],
        [c.first_response_deadline for c in cases],
        [c.resolution_deadline for c in cases],
        [c.version for c in cases],
        [CASE_STATE.dump_json(c).decode() for c in cases],
        [c.resolution.root_cause if c.resolution else None for c in cases],
        [c.resolution.resolved_at if c.resolution else None for c in cases],
    ]
