"""The read port (app/reads.py) on PostgreSQL: the case read model and the event log."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.adapters.kafka.wire import TYPE_BY_KIND
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.sealing import Opener
from service.app.reads import CaseFilter, CaseRead, CaseSignal, IncidentRead, InvalidCursor, StoredEvent
from service.domain.case import CaseState
from service.domain.compensation import CompensationHistory, received_by_currency
from service.domain.incidents import INCIDENT_STATE, IncidentState, incident_stream
from service.domain.registry import SNAPSHOT, UnreadableEvent, current_event_json

_SIGNALS = (
    "SELECT case_id, source, signal_id AS id, kind AS type, severity, reasons, policy_version, category,"
    " occurred_at, received_at, text FROM signal_log WHERE case_id = ANY($1::text[]) AND severity IS NOT NULL"
    " ORDER BY occurred_at, received_at, source, signal_id"
)


def encode_cursor(deadline: datetime | None, case_id: str) -> str:
    """The last row's sort key; no deadline (a queue row with no running clock) is written as nothing."""
    at = "" if deadline is None else deadline.isoformat()
    return base64.urlsafe_b64encode(f"{at}|{case_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    at, case_id = decode_queue_cursor(cursor)
    if at is None:  # only the queue issues a cursor without a deadline
        raise InvalidCursor("cursor is not one this API issued")
    return at, case_id


def decode_queue_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        deadline, case_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(deadline) if deadline else None
        if (at is not None and at.tzinfo is None) or not case_id.isprintable():  # PostgreSQL refuses NUL
            raise ValueError("forged cursor")
        return at, case_id
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidCursor("cursor is not one this API issued") from e


# The queue's sort key, as the index cases_queue (migration 014) spells it: no running clock sorts last.
_QUEUE_KEY = "coalesce(next_deadline, 'infinity'::timestamptz)"


def queue_query(where: CaseFilter, limit: int, cursor: str | None) -> tuple[str, list[Any]]:
    """The queue's page as SQL and its arguments, in the shape the index cases_queue serves."""
    clauses, args = _where(replace(where, status=None))
    clauses.append("status = 'open'")  # a literal, so the partial index serves every plan
    if cursor:
        deadline, case_id = decode_queue_cursor(cursor)
        args += [deadline, case_id]
        n = len(args)
        clauses.append(f"({_QUEUE_KEY}, case_id) > (coalesce(${n - 1}::timestamptz, 'infinity'), ${n})")
    args.append(limit)
    sql = (
        "SELECT state, state_version, next_deadline FROM cases WHERE "
        + " AND ".join(clauses)
        + f" ORDER BY {_QUEUE_KEY}, case_id LIMIT ${len(args)}"
    )
    return sql, args


APPROVALS = (
    "SELECT state, state_version FROM cases WHERE awaiting_approval AND status <> 'closed'{after}"
    " ORDER BY resolution_deadline, case_id LIMIT $1"
)
"""Managers' approvals list, one page; served by the partial index cases_approvals (migration 015)."""


class PostgresCaseReads:
    """Every case, signal and event it answers with has its personal texts opened: these reads are for staff."""

    def __init__(
        self, pool: asyncpg.Pool, keyring: Keyring, customer_window: timedelta = timedelta(days=90)
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        self._customer_window = customer_window

    async def list_cases(
        self, where: CaseFilter, limit: int, cursor: str | None
    ) -> tuple[list[CaseRead], str | None]:
        """Cases soonest deadline first, keyset-paginated on (resolution_deadline, case_id)."""
        clauses, args = _where(where)
        if cursor:
            deadline, case_id = decode_cursor(cursor)
            args += [deadline, case_id]
            clauses.append(f"(resolution_deadline, case_id) > (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        sql = (
            "SELECT state, state_version, resolution_deadline FROM cases"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + f" ORDER BY resolution_deadline, case_id LIMIT ${len(args)}"
        )
        return await self._page(sql, args, limit, lambda row: row["resolution_deadline"])

    async def queue(
        self, where: CaseFilter, limit: int, cursor: str | None
    ) -> tuple[list[CaseRead], str | None]:
        """Open cases, the next deadline of a running clock first, keyset-paginated on (next_deadline, case_id)."""
        sql, args = queue_query(where, limit + 1, cursor)
        return await self._page(sql, args, limit, lambda row: row["next_deadline"])

    async def _page(
        self, sql: str, args: list[Any], limit: int, key: Callable[[asyncpg.Record], datetime | None]
    ) -> tuple[list[CaseRead], str | None]:
        """One page of cases with their signals, and the cursor after its last row when there is more."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(sql, *args)
            cases = await self._opened(conn, rows[:limit])
            signals = await signals_of(conn, [c.case_id for c in cases], self._keyring)
        more = len(rows) > limit
        cursor_out = encode_cursor(key(rows[limit - 1]), cases[-1].case_id) if more else None
        return [CaseRead(c, signals.get(c.case_id, [])) for c in cases], cursor_out

    async def get_case(self, case_id: str) -> tuple[CaseRead, list[StoredEvent]] | None:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            found = await conn.fetchrow("SELECT state, state_version FROM cases WHERE case_id = $1", case_id)
            if found is None:
                return None
            rows = await conn.fetch(
                "SELECT position, version, event_id::text, type, recorded_at, data::text, schema_version"
                " FROM events WHERE stream_id = $1 ORDER BY version",
                case_id,
            )
            signals = await signals_of(conn, [case_id], self._keyring)
            opener = await Opener.for_texts(conn, self._keyring, [found["state"], *(r["data"] for r in rows)])
            state = opener.value(SNAPSHOT.read(found["state_version"], found["state"]))
            others = await conn.fetch(
                "SELECT state, state_version FROM cases WHERE customer_id = $1 AND case_id <> $2",
                state.customer_id,
                case_id,
            )
            now = await conn.fetchval("SELECT now()")
        history = CompensationHistory(
            customer=tuple(c for r in others for c in SNAPSHOT.read(r["state_version"], r["state"]).compensations)
        )
        received = received_by_currency(state, history, now - self._customer_window)
        case = CaseRead(state, signals.get(case_id, []), received, self._customer_window)
        return case, [_history(opener, *r) for r in rows]

    async def _opened(self, conn: Any, rows: list[asyncpg.Record]) -> list[CaseState]:
        """The snapshots of these rows, read and opened (one query for all their keys)."""
        opener = await Opener.for_texts(conn, self._keyring, [r["state"] for r in rows])
        return [opener.value(SNAPSHOT.read(r["state_version"], r["state"])) for r in rows]

    async def awaiting_approval(self, limit: int, cursor: str | None) -> tuple[list[CaseState], str | None]:
        """Cases with a compensation waiting for approval, not closed, soonest deadline first (keyset-paginated)."""
        args: list[Any] = [limit + 1]
        after = ""
        if cursor:
            args += list(decode_cursor(cursor))
            after = " AND (resolution_deadline, case_id) > ($2, $3)"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(APPROVALS.format(after=after), *args)
            cases = await self._opened(conn, rows[:limit])
        more = len(rows) > limit
        return cases, encode_cursor(cases[-1].resolution_deadline, cases[-1].case_id) if more else None

    async def open_cases_by_severity(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT severity, count(*) AS n FROM cases WHERE status = 'open' GROUP BY severity"
        )
        return {r["severity"]: r["n"] for r in rows}

    async def root_causes(self, window_days: int) -> list[tuple[str, int]]:
        """Resolved cases per root-cause tag within the trailing window, most first."""
        rows = await self._pool.fetch(
            "SELECT root_cause, count(*) AS n FROM cases WHERE root_cause IS NOT NULL"
            " AND status <> 'open' AND resolved_at >= now() - make_interval(days => $1)"
            " GROUP BY root_cause ORDER BY n DESC, root_cause",
            window_days,
        )
        return [(r["root_cause"], r["n"]) for r in rows]

    async def incidents(self, status: str | None, limit: int) -> list[IncidentState]:
        rows = await self._pool.fetch(
            "SELECT state FROM incidents WHERE $1::text IS NULL OR status = $1"
            " ORDER BY opened_at DESC, incident_id LIMIT $2",
            status,
            limit,
        )
        return [INCIDENT_STATE.validate_json(r["state"]) for r in rows]

    async def incident(self, incident_id: str) -> IncidentRead | None:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            state = await conn.fetchval("SELECT state FROM incidents WHERE incident_id = $1", incident_id)
            if state is None:
                return None
            counts = await conn.fetch(
                "SELECT status, count(*) AS n FROM cases WHERE incident_id = $1 GROUP BY status", incident_id
            )
            rows = await conn.fetch(
                "SELECT position, version, event_id::text, type, recorded_at, data::text FROM events"
                " WHERE stream_id = $1 ORDER BY version",
                incident_stream(incident_id),
            )
        return IncidentRead(
            INCIDENT_STATE.validate_json(state),
            {r["status"]: r["n"] for r in counts},
            [StoredEvent(*r) for r in rows],
        )

    async def ping(self, within_seconds: float) -> bool:
        """Whether the database answers a query within that many seconds (the readiness probe)."""
        return await self._pool.fetchval("SELECT true", timeout=within_seconds) is True


def _history(
    opener: Opener,
    position: int,
    version: int,
    event_id: str,
    type_: str,
    recorded_at: datetime,
    data: str,
    schema_version: int,
) -> StoredEvent:
    """An event of a case's history in its type's current shape; one that cannot be brought there is shown as
    it is stored (the history is for reading: it never fails for one old event)."""
    try:
        current = current_event_json(type_, schema_version, data)
    except UnreadableEvent:
        current = data
    return StoredEvent(position, version, event_id, type_, recorded_at, opener.event_json(type_, current))


async def signals_of(conn: Any, case_ids: list[str], keyring: Keyring) -> dict[str, list[CaseSignal]]:
    """The cases' signals in their order, each with its text opened."""
    found: dict[str, list[CaseSignal]] = {}
    rows = await conn.fetch(_SIGNALS, case_ids)
    opener = await Opener.for_texts(conn, keyring, [r["text"] for r in rows])
    for r in rows:
        fields = dict(r)
        fields["type"] = TYPE_BY_KIND.get(fields["type"], fields["type"])
        fields["text"] = opener.text(fields["text"])
        found.setdefault(fields.pop("case_id"), []).append(CaseSignal(**fields))
    return found


def _where(where: CaseFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("customer_id", where.customer_id),
        ("status", where.status),
        ("severity", where.severity),
        ("owner", where.owner),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if where.unassigned:
        clauses.append("owner IS NULL")
    if where.due_before is not None:
        args.append(where.due_before)
        clauses.append(f"resolution_deadline < ${len(args)}")
    if where.next_deadline_before is not None:
        args.append(where.next_deadline_before)
        clauses.append(f"next_deadline <= ${len(args)}")
    return clauses, args
