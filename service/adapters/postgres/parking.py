"""Parked outgoing events (table parked_events): what the relay holds back, per case, and the operator's view.

A row is open while its state is 'parked' or 'retry'. A case with an open row publishes nothing past it: the
relay parks its later events behind the first open one, so the case's order on Kafka holds. The relay is the
only publisher; an operator only changes states (release: 'retry', give up: 'skipped'), and the relay picks
a case up again when it is ready (see `open_streams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.adapters.postgres.case_writes import Connection
from service.app.ports import LoggedEvent

RELAY = "outgoing"
"""The name of the service's one outgoing relay (its lease, its position, its parked events)."""


@dataclass(frozen=True, slots=True)
class Parked:
    """An event to hold back: for a fault of its own (`behind` None), or behind its case's parked event."""

    position: int
    stream_id: str
    event_id: str
    reason: str
    behind: int | None = None

    @classmethod
    def fault(cls, event: LoggedEvent, reason: str) -> Parked:
        return cls(event.position, event.stream_id, event.event_id, reason)

    @classmethod
    def held(cls, event: LoggedEvent, behind: int) -> Parked:
        return cls(event.position, event.stream_id, event.event_id, f"behind parked event {behind}", behind)


@dataclass(frozen=True, slots=True)
class OpenStream:
    """A case with open parked rows: the first one, how many, and whether the relay should publish them now."""

    head: int
    count: int
    ready: bool


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """One parked event as the operator sees it."""

    position: int
    stream_id: str
    type: str
    reason: str
    state: str
    parked_at: datetime
    released_at: datetime | None


async def open_streams(conn: Connection, relay: str) -> dict[str, OpenStream]:
    """Cases with open rows. Ready: an operator released one of them, or the first waits behind an event
    that is no longer parked (published, or skipped by the operator)."""
    rows = await conn.fetch(
        "SELECT stream_id, min(position), count(*),"
        " bool_or(state = 'retry') OR (array_agg(behind ORDER BY position))[1] IS NOT NULL"
        " FROM parked_events WHERE relay = $1 AND state IN ('parked', 'retry') GROUP BY stream_id",
        relay,
    )
    return {r[0]: OpenStream(r[1], r[2], r[3]) for r in rows}


async def park(conn: Connection, relay: str, parked: Sequence[Parked]) -> None:
    """Record events as parked; one parked before (a batch read again after a crash) stays as it is."""
    await conn.execute(
        "INSERT INTO parked_events (relay, position, stream_id, event_id, reason, behind)"
        " SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::uuid[], $5::text[], $6::bigint[])"
        " ON CONFLICT (relay, position) DO NOTHING",
        relay,
        [p.position for p in parked],
        [p.stream_id for p in parked],
        [p.event_id for p in parked],
        [p.reason for p in parked],
        [p.behind for p in parked],
    )


async def lock_open_events(conn: Connection, relay: str, stream_id: str) -> list[LoggedEvent]:
    """A case's open rows as events, in position order, locked until the caller's transaction ends (an
    operator's skip waits meanwhile, so it never gives up an event the relay is publishing)."""
    rows = await conn.fetch(
        "SELECT e.position, e.stream_id, e.version, e.event_id::text, e.type, e.data::text, e.recorded_at,"
        " e.traceparent, e.schema_version FROM parked_events p JOIN events e ON e.position = p.position"
        " WHERE p.relay = $1 AND p.stream_id = $2 AND p.state IN ('parked', 'retry')"
        " ORDER BY p.position FOR UPDATE OF p",
        relay,
        stream_id,
    )
    return [LoggedEvent(*r) for r in rows]


async def mark_published(conn: Connection, relay: str, positions: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE parked_events SET state = 'published', released_at = now()"
        " WHERE relay = $1 AND position = ANY($2::bigint[])",
        relay,
        list(positions),
    )


async def park_again(conn: Connection, relay: str, fault: Parked, behind: Sequence[int]) -> None:
    """A released event failed again: it waits for the operator with its new reason, the rest behind it."""
    await conn.execute(
        "UPDATE parked_events SET state = 'parked', reason = $3, behind = NULL WHERE relay = $1 AND position = $2",
        relay,
        fault.position,
        fault.reason,
    )
    await conn.execute(
        "UPDATE parked_events SET state = 'parked', reason = $3, behind = $2"
        " WHERE relay = $1 AND position = ANY($4::bigint[])",
        relay,
        fault.position,
        f"behind parked event {fault.position}",
        list(behind),
    )


async def list_parked(conn: Connection, relay: str, include_released: bool) -> list[ParkedRow]:
    rows = await conn.fetch(
        "SELECT p.position, p.stream_id, e.type, p.reason, p.state, p.parked_at, p.released_at"
        " FROM parked_events p JOIN events e ON e.position = p.position"
        " WHERE p.relay = $1 AND ($2 OR p.state IN ('parked', 'retry')) ORDER BY p.position",
        relay,
        include_released,
    )
    return [ParkedRow(*r) for r in rows]


async def release(conn: Connection, relay: str, case_id: str | None) -> int:
    """Mark a case's parked events (every case's when None) for the relay to publish again, in order."""
    result = await conn.execute(
        "UPDATE parked_events SET state = 'retry'"
        " WHERE relay = $1 AND state = 'parked' AND ($2::text IS NULL OR stream_id = $2)",
        relay,
        case_id,
    )
    return int(result.split()[-1])


async def skip(conn: Connection, relay: str, position: int) -> bool:
    """Give up one open parked event: it is never published; the case's later events are then released."""
    result = await conn.execute(
        "UPDATE parked_events SET state = 'skipped', released_at = now()"
        " WHERE relay = $1 AND position = $2 AND state IN ('parked', 'retry')",
        relay,
        position,
    )
    return result.split()[-1] == "1"
