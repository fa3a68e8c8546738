"""Due SLA timers, claimed by any number of instances at once (FOR UPDATE SKIP LOCKED, the database clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import asyncpg
import structlog

from service.adapters.postgres.case_writes import Connection, append_events, save_cases, save_timers
from service.adapters.postgres.errors import store_transaction
from service.domain.case import CaseState
from service.domain.intake import NewEvent
from service.domain.registry import SNAPSHOT
from service.domain.sla import clock_name
from service.domain.timers import Timer, TimerKind
from service.observability import ISOLATED_RECORDS

log = structlog.get_logger()
REARM_BATCH = 100


class PostgresTimerTransaction:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def claim_due(self, limit: int) -> tuple[list[Timer], datetime]:
        """Up to `limit` unfired timers due by the database's clock, locked; others skip them."""
        rows = await self._conn.fetch(
            "SELECT case_id, sla, kind, deadline, due_at FROM sla_timers WHERE fired_at IS NULL"
            " AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        now: datetime = await self._conn.fetchval("SELECT now()")
        timers = []
        for r in rows:
            try:
                timers.append(
                    Timer(
                        r["case_id"], clock_name(r["sla"]), TimerKind(r["kind"]), r["deadline"], r["due_at"]
                    )
                )
            except ValueError:  # a row no code of ours wrote: set aside (marked failed), never the loop's end
                await self._set_aside(r["case_id"], r["sla"], r["kind"])
        return timers, now

    async def _set_aside(self, case_id: str, sla: str, kind: str) -> None:
        ISOLATED_RECORDS.labels("timer").inc()
        log.error(
            "timer_isolated", case_id=case_id, sla=sla[:40], kind=kind[:40], error="unreadable timer row"
        )
        await self._conn.execute(
            "UPDATE sla_timers SET fired_at = now() WHERE (case_id, sla, kind) = ($1, $2, $3)",
            case_id,
            sla,
            kind,
        )

    async def cases(self, case_ids: Sequence[str]) -> dict[str, CaseState]:
        """The cases' snapshots; one that cannot be read is left out (its timers are set aside)."""
        states, unreadable = await self._snapshots(case_ids)
        for case_id, error in unreadable.items():
            ISOLATED_RECORDS.labels("timer").inc()
            log.error("case_snapshot_unreadable", case_id=case_id, error=error)
        return states

    async def _snapshots(self, case_ids: Sequence[str]) -> tuple[dict[str, CaseState], dict[str, str]]:
        rows = await self._conn.fetch(
            "SELECT case_id, state, state_version FROM cases WHERE case_id = ANY($1::text[])", list(case_ids)
        )
        states, unreadable = {}, {}
        for r in rows:
            try:
                states[r["case_id"]] = SNAPSHOT.read(r["state_version"], r["state"])
            except ValueError as e:  # pydantic's ValidationError is a ValueError
                unreadable[r["case_id"]] = type(e).__name__
        return states, unreadable

    async def rearm_readable(self, after: timedelta) -> list[str]:
        """Set-aside timers come back when their case reads again; the others are looked at again `after`."""
        ids = [
            r["case_id"]
            for r in await self._conn.fetch(
                "SELECT DISTINCT case_id FROM sla_timers WHERE set_aside_at < now() - $1::interval LIMIT $2",
                after,
                REARM_BATCH,
            )
        ]
        if not ids:
            return []
        states, _ = await self._snapshots(ids)
        await self._conn.execute(
            "UPDATE sla_timers SET fired_at = CASE WHEN case_id = ANY($1::text[]) THEN NULL ELSE fired_at END,"
            " set_aside_at = CASE WHEN case_id = ANY($1::text[]) THEN NULL ELSE now() END"
            " WHERE case_id = ANY($2::text[]) AND set_aside_at IS NOT NULL",
            list(states),
            ids,
        )
        if states:
            log.info("timers_rearmed", cases=len(states))
        return sorted(states)

    async def record(
        self,
        fired: Sequence[Timer],
        events: Sequence[NewEvent],
        cases: Mapping[str, CaseState],
        timers: Mapping[str, Sequence[Timer]],
        set_aside: Sequence[Timer] = (),
    ) -> None:
        await self._conn.execute(
            "UPDATE sla_timers t SET fired_at = now(), set_aside_at = CASE WHEN f.aside THEN now() END"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS f(case_id, sla, kind, aside)"
            " WHERE (t.case_id, t.sla, t.kind) = (f.case_id, f.sla, f.kind)",
            [t.case_id for t in (*fired, *set_aside)],
            [str(t.sla) for t in (*fired, *set_aside)],
            [t.kind.value for t in (*fired, *set_aside)],
            [False] * len(fired) + [True] * len(set_aside),
        )
        await save_timers(self._conn, timers)
        await save_cases(self._conn, cases.values())
        await append_events(self._conn, events)


class PostgresTimerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTimerTransaction]:
        async with store_transaction(self._pool) as conn:
            yield PostgresTimerTransaction(conn)
