"""PostgreSQL side of the signal intake: dedup, case snapshots, history, and the batch append."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.adapters.postgres.case_writes import CASE_COLUMNS, append_events, save_cases, save_timers
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.errors import store_transaction
from service.adapters.postgres.sealing import Sealer
from service.adapters.postgres.trend_store import mark_trends_due
from service.app.ports import PartitionKey, SignalKey
from service.domain.case import CaseState
from service.domain.incidents import (
    INCIDENT_STATE,
    IncidentOpened,
    IncidentStatus,
    OpenIncident,
    Scope,
    SurgeCount,
    SurgeRule,
    evolve_incident,
    incident_stream,
)
from service.domain.intake import IntakePlan, NewEvent, Outcome
from service.domain.registry import SNAPSHOT

SIGNAL_LOG_COLUMNS = [
    "source",
    "signal_id",
    "customer_id",
    "kind",
    "occurred_at",
    "received_at",
    "severity",
    "reasons",
    "category",
    "outcome",
    "case_id",
    "policy_version",
    "text",
    "service",
    "region",
]


_LANDED = frozenset({Outcome.OPENED, Outcome.ATTACHED, Outcome.ESCALATED, Outcome.REOPENED})
"""Outcomes of a signal recorded on its case: its text is kept (sealed) beside it in the log."""

PARSED_SNAPSHOTS = 5_000
"""How many cases' parsed snapshots an intake store keeps: the recently busy customers' (about 1.4 KB a
case with a few signals, 7 MB in all; more for cases with long histories)."""
_STATE = CASE_COLUMNS.index("state")


class ParsedSnapshots:
    """The snapshot text last read or written for each recently used case, with the state it parses to.

    A customer in one batch is usually in the next: their snapshot is then the text this process wrote, and
    validating it again (about 10 us a case) is skipped. The text itself is the key, so the memory never
    answers for a row that changed since (another instance's write, a rebuild, a rolled-back write of ours):
    the text read differs, and it is validated as usual. Least recently used cases go first."""

    def __init__(self, size: int = PARSED_SNAPSHOTS) -> None:
        self._size = size
        self._known: OrderedDict[str, tuple[str, CaseState]] = OrderedDict()

    def read(self, case_id: str, version: int, text: str) -> CaseState:
        known = self._known.get(case_id)
        if known is not None and known[0] == text and version == SNAPSHOT.version:
            self._known.move_to_end(case_id)
            return known[1]
        state = SNAPSHOT.read(version, text)
        if version == SNAPSHOT.version:
            self.remember(case_id, text, state)
        return state

    def remember(self, case_id: str, text: str, state: CaseState) -> None:
        self._known[case_id] = (text, state)
        self._known.move_to_end(case_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def written(self, states: Sequence[CaseState], rows: Sequence[tuple[Any, ...]]) -> None:
        for state, row in zip(states, rows, strict=True):
            self.remember(state.case_id, row[_STATE], state)


class PostgresIntakeTransaction:
    """The snapshots it reads stay sealed (the intake never reads a text); what it writes is sealed."""

    def __init__(
        self,
        conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
        keyring: Keyring,
        snapshots: ParsedSnapshots | None = None,
    ) -> None:
        self._conn = conn
        self._keyring = keyring
        self._snapshots = snapshots or ParsedSnapshots(0)

    async def seen(self, keys: Sequence[SignalKey]) -> set[SignalKey]:
        rows = await self._conn.fetch(
            "SELECT l.source, l.signal_id FROM signal_log l"
            " JOIN unnest($1::text[], $2::text[]) AS k(source, signal_id) USING (source, signal_id)",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["source"], r["signal_id"]) for r in rows}

    async def latest_cases(self, customer_ids: Sequence[str]) -> dict[str, CaseState]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT ON (customer_id) customer_id, case_id, state, state_version FROM cases"
            " WHERE customer_id = ANY($1::text[]) ORDER BY customer_id, ordinal DESC",
            list(customer_ids),
        )
        read = self._snapshots.read
        return {r["customer_id"]: read(r["case_id"], r["state_version"], r["state"]) for r in rows}

    async def recent_failures(
        self, customer_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        rows = await self._conn.fetch(
            "SELECT customer_id, array_agg(occurred_at) AS times FROM signal_log"
            " WHERE customer_id = ANY($1::text[]) AND severity IS NOT NULL AND occurred_at >= $2"
            " GROUP BY customer_id",
            list(customer_ids),
            since,
        )
        return {r["customer_id"]: r["times"] for r in rows}

    async def record(self, plan: IntakePlan, group: str, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Write the whole batch; the event insert comes last, under the append lock, so positions commit in order."""
        sealer = await Sealer.for_cases(self._conn, self._keyring, plan.cases.values())
        await self._log_signals(plan, sealer)
        await save_timers(self._conn, plan.timers)
        states = sealer.states(plan.cases.values())
        self._snapshots.written(states, await save_cases(self._conn, states))
        await self._save_offsets(group, next_offsets)
        await append_events(self._conn, sealer.events(plan.events))
        if plan.root_causes:  # rare (a signal reopened a resolved case): the trend loop recounts the tag
            await mark_trends_due(self._conn, plan.root_causes)

    async def _log_signals(self, plan: IntakePlan, sealer: Sealer) -> None:
        applied = sorted(plan.applied, key=lambda a: a.signal.key)
        if not applied:
            return
        await self._conn.copy_records_to_table(
            "signal_log",
            columns=SIGNAL_LOG_COLUMNS,
            records=[
                (
                    a.signal.source,
                    a.signal.id,
                    a.signal.customer_id,
                    a.signal.kind,
                    a.signal.occurred_at,
                    a.signal.received_at,
                    a.classification.severity,
                    a.classification.reasons,
                    a.classification.category,
                    a.outcome,
                    a.case_id,
                    a.classification.policy_version,
                    sealer.text(a.case_id, a.signal.text) if a.case_id and a.outcome in _LANDED else None,
                    a.signal.service,
                    a.signal.region,
                )
                for a in applied
            ],
        )

    async def open_incidents(self) -> dict[str, OpenIncident]:
        rows = await self._conn.fetch(
            "SELECT scope_key, incident_id, status, state->'scope' AS scope,"
            " json_typeof(state->'detection') IS DISTINCT FROM 'object' AS by_hand FROM incidents"
            " WHERE status IN ('proposed', 'declared')"
        )
        return {
            r["scope_key"]: OpenIncident(
                r["incident_id"], IncidentStatus(r["status"]), r["by_hand"], tuple(json.loads(r["scope"]).items())
            )
            for r in rows
        }

    async def customers_in_window(self, rule: SurgeRule, scope: Scope, end: datetime) -> list[str]:
        clauses = " AND ".join(f"{key} = ${i + 3}" for i, (key, _) in enumerate(scope))
        rows = await self._conn.fetch(
            f"SELECT DISTINCT customer_id FROM signal_log WHERE severity IS NOT NULL AND {clauses}"
            " AND occurred_at > $1 AND occurred_at <= $2 ORDER BY customer_id",
            end - rule.window,
            end,
            *(value for _, value in scope),
        )
        return [r["customer_id"] for r in rows]

    async def record_links(self, events: Sequence[NewEvent], cases: Sequence[CaseState]) -> None:
        if not events:
            return
        sealer = await Sealer.for_cases(self._conn, self._keyring, cases)
        states = sealer.states(cases)
        self._snapshots.written(states, await save_cases(self._conn, states))
        await append_events(self._conn, sealer.events(events))

    async def surge_counts(self, wanted: Sequence[tuple[SurgeRule, Scope, datetime]]) -> list[SurgeCount]:
        """Each scope's distinct customers in the window ending at its time (this batch's signals included:
        call after record), one query per rule; the baseline only where the floor is reached."""
        counts = []
        by_rule: dict[str, list[tuple[SurgeRule, Scope, datetime]]] = {}
        for w in wanted:
            by_rule.setdefault(w[0].name, []).append(w)
        for rows in by_rule.values():
            rule = rows[0][0]
            found = await self._conn.fetch(_count_sql(rule), *_columns(rows), [end for _, _, end in rows], rule.window)
            for (_, scope, end), row in zip(rows, sorted(found, key=lambda r: r["i"]), strict=True):
                customers = row["customers"]
                base = await self._baseline(rule, scope, end) if customers >= rule.min_customers else None
                counts.append(SurgeCount(rule, scope, customers, base, end))
        return counts

    async def _baseline(self, rule: SurgeRule, scope: Scope, end: datetime) -> float | None:
        window_start = end - rule.window
        start = window_start - rule.baseline_windows * rule.window
        clauses = " AND ".join(f"{key} = ${i + 4}" for i, (key, _) in enumerate(scope))
        pairs = await self._conn.fetchval(
            "SELECT count(DISTINCT (customer_id,"
            " ((extract(epoch FROM occurred_at - $1) * 1000000)::bigint - 1) / $3)) FROM signal_log"
            f" WHERE severity IS NOT NULL AND {clauses} AND occurred_at > $1 AND occurred_at <= $2",
            start,
            window_start,
            rule.window // timedelta(microseconds=1),
            *(value for _, value in scope),
        )
        return None if not pairs else pairs / rule.baseline_windows

    async def record_incidents(self, events: Sequence[IncidentOpened]) -> None:
        """New incidents: their first event and their row (a scope already open elsewhere is a lost race)."""
        if not events:
            return
        states = [evolve_incident(None, e) for e in events]
        await self._conn.executemany(
            "INSERT INTO incidents (incident_id, scope_key, status, opened_at, version, state)"
            " VALUES ($1, $2, $3, $4, $5, $6::json)",
            [
                (st.incident_id, st.scope_key, st.status, st.opened_at, st.version, INCIDENT_STATE.dump_json(st).decode())
                for st in states
            ],
        )
        await append_events(self._conn, [NewEvent(incident_stream(e.incident_id), 1, e) for e in events])

    async def _save_offsets(self, group: str, next_offsets: Mapping[PartitionKey, int]) -> None:
        if not next_offsets:
            return
        keys = sorted(next_offsets)
        await self._conn.execute(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)"
            " SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])"
            " ON CONFLICT (group_id, topic, partition) DO UPDATE"
            " SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset)",
            group,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [next_offsets[k] for k in keys],
        )


def _count_sql(rule: SurgeRule) -> str:
    """Distinct customers per scope in (end - window, end]; the scopes come as one array per key, then the ends
    and the window. The columns are the rule's keys (signal_log names its columns after them)."""
    keys = [key.value for key in rule.group_by]
    n = len(keys)
    match = " AND ".join(f"l.{key} IS NOT NULL AND l.{key} = k.v{i}" for i, key in enumerate(keys))
    arrays = ", ".join(f"${i + 1}::text[]" for i in range(n))
    names = ", ".join(f"v{i}" for i in range(n))
    return (
        "SELECT k.i, (SELECT count(DISTINCT l.customer_id) FROM signal_log l"
        f" WHERE l.severity IS NOT NULL AND {match}"
        f" AND l.occurred_at > k.end_at - ${n + 2}::interval AND l.occurred_at <= k.end_at) AS customers"
        f" FROM unnest({arrays}, ${n + 1}::timestamptz[]) WITH ORDINALITY AS k({names}, end_at, i)"
    )


def _columns(rows: Sequence[tuple[SurgeRule, Scope, datetime]]) -> list[list[str]]:
    """The scopes' values, one list per key of the rule."""
    return [list(values) for values in zip(*([v for _, v in scope] for _, scope, _ in rows), strict=True)]


class PostgresIntakeStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring
        self._snapshots = ParsedSnapshots()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresIntakeTransaction]:
        async with store_transaction(self._pool) as conn:
            yield PostgresIntakeTransaction(conn, self._keyring, self._snapshots)

    async def next_offsets(self, group: str, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        rows = await self._pool.fetch(
            "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o"
            " JOIN unnest($2::text[], $3::int[]) AS p(topic, partition) USING (topic, partition)"
            " WHERE o.group_id = $1",
            group,
            [p[0] for p in partitions],
            [p[1] for p in partitions],
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def forget_offsets(pool: asyncpg.Pool, topics: Sequence[str]) -> None:
    """Forget where the consumers stood on topics just created: a topic deleted and made again starts at 0."""
    await pool.execute("DELETE FROM consumer_offsets WHERE topic = ANY($1::text[])", list(topics))
