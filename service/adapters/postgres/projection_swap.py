"""The rebuild's shadow read model: filled from one snapshot, caught up with the log, swapped in for `cases`.

Why the swap stops every writer of `cases` while holding appends only for the tail (checked in the code, not
assumed): `cases` is written only by `save_cases`, and its three callers (the intake's, the SLA timers' and the
commands' `record`) call `append_events` in the same transaction, after it. They save a case only when it has
new events: `plan_intake` puts a case in `plan.cases` only with its events, the timer firing keeps a case in
`changed` only when a timer decided events for it, and a command records only when it decided events. So
every transaction that writes `cases` also takes the append lock, after it has locked its case rows.

The swap therefore takes its locks in the writers' order: first `cases` (ACCESS EXCLUSIVE: it waits for the
readers and writers in flight, which finish, taking the free append lock as they go, and everyone new queues
behind it), then the append lock. No writer of `cases` then runs; the relay and the trend review still read
the log. The trend review takes the append lock *before* it reads `cases`; were it to hold the append lock
while queued behind the swap, the swap's short lock timeout (under the server's deadlock_timeout) makes the
swap give way and try again, so the review never fails. Appenders are never refused: they wait.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from service.adapters.postgres.case_writes import CASE_COLUMNS, Connection, case_rows, lock_appends
from service.adapters.retry import retrying
from service.domain.case import CaseState, evolve
from service.domain.errors import ConcurrencyConflict
from service.domain.registry import SNAPSHOT, UnreadableEvent, read_case_event

SHADOW = "cases_rebuild"
_REBUILD_LOCK = (0x4556_4E54, 1)  # one rebuild at a time: the append lock's class, another key
_CASES_LOCK_TIMEOUT = "2s"  # the wait for reads and writes in flight; new ones queue behind it meanwhile
_APPEND_LOCK_TIMEOUT = "200ms"  # below deadlock_timeout (1 s): the swap, not a trend review, gives way
_SWAP_ATTEMPTS = 30
_INDEX_NAME = re.compile(r" INDEX \S+ ON \S+ ")


class RebuildRunning(Exception):
    """Another rebuild holds the rebuild lock."""


class ShadowMismatch(Exception):
    """The shadow lacks an index that `cases` has: the swap would lose it."""


@asynccontextmanager
async def rebuilding(conn: Connection) -> AsyncIterator[None]:
    """One rebuild at a time (a session lock); a shadow left behind, by a crash or a failed swap, is dropped."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *_REBUILD_LOCK):
        raise RebuildRunning("another `recovery projections rebuild` is running")
    try:
        yield
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *_REBUILD_LOCK)


async def create(conn: Connection) -> int:
    """An empty shadow shaped like `cases` (columns, defaults, indexes, storage parameters), and the log
    position this transaction's snapshot ends at. Positions become visible in order (they are taken under
    the append lock, held to commit), so the snapshot holds every event up to that position and none after."""
    await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")
    options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'cases'::regclass")
    storage = f" WITH ({', '.join(options)})" if options else ""
    await conn.execute(f"CREATE TABLE {SHADOW} (LIKE cases INCLUDING ALL){storage}")
    return await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")  # type: ignore[no-any-return]


async def fill(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table(SHADOW, records=rows, columns=CASE_COLUMNS)


async def _keep_as_stored(conn: Connection, case_ids: Sequence[str]) -> None:
    """These cases' rows of `cases` into the shadow as they are (their streams cannot be replayed): called with
    `cases` locked, when each row holds its case's last event, which the writer that stored it could read."""
    if not case_ids:
        return
    await conn.execute(f"DELETE FROM {SHADOW} WHERE case_id = ANY($1::text[])", case_ids)
    await conn.execute(f"INSERT INTO {SHADOW} SELECT * FROM cases WHERE case_id = ANY($1::text[])", case_ids)


async def catch_up_unlocked(
    conn: Connection, since: int, chunk: int, unreadable: dict[str, str]
) -> tuple[int, int]:
    """Apply what was appended during the replay, a transaction per chunk, with no lock: the tail left for
    the swap is then only what is appended meanwhile. Returns the position reached and the events applied."""
    applied = 0
    while True:
        async with conn.transaction():
            since, count = await _apply_chunk(conn, since, chunk, unreadable)
        applied += count
        if count < chunk:
            return since, applied


async def swap(conn: Connection, since: int, chunk: int, unreadable: dict[str, str]) -> tuple[int, float]:
    """Block the writers of `cases` (see the module's docstring), apply the tail after `since` to the shadow,
    copy the rows of the cases whose events cannot all be read, and put the shadow in place of `cases`, in one
    transaction. Returns how many events the tail held, and for how many seconds writers of `cases` were held
    (from holding the lock on `cases` to the commit)."""

    async def attempt() -> tuple[int, float]:
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{_CASES_LOCK_TIMEOUT}'")
                await conn.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
                locked = time.monotonic()
                await conn.execute(f"SET LOCAL lock_timeout = '{_APPEND_LOCK_TIMEOUT}'")
                await lock_appends(conn)
                tail, (position, count) = 0, (since, chunk)
                while count == chunk:
                    position, count = await _apply_chunk(conn, position, chunk, unreadable)
                    tail += count
                await _keep_as_stored(conn, sorted(unreadable))
                await _replace(conn)
            return tail, time.monotonic() - locked
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as e:
            raise ConcurrencyConflict(type(e).__name__) from e  # the retry policy's "try again"

    return await retrying(attempt, "projections_swap", attempts=_SWAP_ATTEMPTS)


async def _apply_chunk(
    conn: Connection, since: int, chunk: int, unreadable: dict[str, str]
) -> tuple[int, int]:
    """Fold up to `chunk` case events after `since`, in log order, into the shadow's states of their cases. A
    case with an event that cannot be read is added to `unreadable` and left out: the swap copies its row."""
    rows = await conn.fetch(
        "SELECT position, stream_id, type, schema_version, data FROM events"
        " WHERE position > $1 AND type LIKE 'case.%'"
        " ORDER BY position LIMIT $2",
        since,
        chunk,
    )
    if not rows:
        return since, 0
    ids = sorted({r["stream_id"] for r in rows} - unreadable.keys())
    stored = await conn.fetch(
        f"SELECT state, state_version FROM {SHADOW} WHERE case_id = ANY($1::text[])", ids
    )
    states: dict[str, CaseState] = {}
    for s in stored:
        state = SNAPSHOT.read(s["state_version"], s["state"])
        states[state.case_id] = state
    for r in rows:
        stream_id = r["stream_id"]
        if stream_id in unreadable:
            continue
        try:
            event = read_case_event(r["type"], r["schema_version"], r["data"])
        except UnreadableEvent as e:
            unreadable[stream_id] = str(e)
            states.pop(stream_id, None)
            continue
        states[stream_id] = evolve(states.get(stream_id), event)
    await conn.execute(f"DELETE FROM {SHADOW} WHERE case_id = ANY($1::text[])", ids)
    await fill(conn, case_rows(states.values()))
    return rows[-1]["position"], len(rows)


async def _replace(conn: Connection) -> None:
    """Drop `cases` and give the shadow its name, its grants (a read-only reporting role keeps its access),
    and each of its indexes (with the constraint an index backs, which PostgreSQL renames with it) the name
    of the index of the same shape: the code and the migrations name `cases_pkey` and
    `cases_one_open_per_customer`."""
    names = await _indexes(conn, "cases")
    shadow_names = await _indexes(conn, SHADOW)
    missing = names.keys() - shadow_names.keys()
    if missing:
        raise ShadowMismatch(", ".join(sorted(names[m] for m in missing)))
    grants = await conn.fetch(_GRANTS_ON_CASES)
    await conn.execute(f"DROP TABLE cases; ALTER TABLE {SHADOW} RENAME TO cases")
    for shape, name in sorted(names.items()):
        await conn.execute(f'ALTER INDEX "{shadow_names[shape]}" RENAME TO "{name}"')
    for grant in grants:
        await conn.execute(grant["statement"])


# Every privilege another role holds on `cases`, as the GRANT that gives it (the owner's are implicit).
_GRANTS_ON_CASES = """
SELECT format('GRANT %s ON cases TO %s%s', a.privilege_type,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = 'cases'::regclass AND a.grantee <> c.relowner
ORDER BY 1
"""


async def _indexes(conn: Connection, table: str) -> dict[str, str]:
    """A table's indexes by their definition without name and table, e.g. 'CREATE UNIQUE INDEX ON USING btree (customer_id) WHERE ...'."""
    rows = await conn.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass",
        table,
    )
    return {_INDEX_NAME.sub(" INDEX ON ", r["definition"], count=1): r["relname"] for r in rows}
