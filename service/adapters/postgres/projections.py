"""Rebuild the case read model from the event log, or check that it equals what the log says.

Both stream the log in chunks, ordered by stream then version, and fold each stream with `evolve`: only the
stream being read and one chunk of finished streams are in memory, whatever the size of the log.

- `check_cases` takes no lock: one REPEATABLE READ, READ ONLY transaction sees the log and the read model as
  of one snapshot, and the two agree in every snapshot because every writer changes them in one transaction.
- `rebuild_cases` replays into a shadow table in one snapshot (appends go on meanwhile), remembers the log
  position that snapshot ends at, catches the shadow up with what was appended since, then swaps it in with
  appends blocked only while the last tail is applied and the tables are renamed (see `projection_swap`).

Sealed texts (sealing.py) replay as they are stored: the rebuild needs no key, and its snapshots hold what the
events hold. Given the keyring, the comparison opens both sides, so a text stored in clear by an older release
and sealed in the snapshot since reads as the same.

The rebuild replaces the `cases` read model only: `sla_timers`, `rootcause_trends` and the other tables are
written beside the events, not derived by a replay, and are left as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from service.adapters.postgres import projection_swap as shadow
from service.adapters.postgres.case_writes import CASE_COLUMNS, Connection, case_rows
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.sealing import Opener
from service.domain.case import CaseState, evolve
from service.domain.registry import SNAPSHOT, UnreadableEvent, read_case_event

Progress = Callable[[int], Awaitable[None]]  # told how many events were just replayed; may pause the replay
CHUNK = 5000  # events per fetch: a few MB of rows at most
LISTED = 1000  # differing case ids kept for the report; beyond that only counted
_STATE = CASE_COLUMNS.index("state")


@dataclass
class RebuildReport:
    streams: int = 0
    events: int = 0  # replayed from the snapshot
    # case ids whose stored read model differs from the replay (or is missing, or extra)
    differing: list[str] = field(default_factory=list)
    differing_count: int = 0  # all of them; `differing` lists the first LISTED
    position: int = 0  # the log position the snapshot ended at
    caught_up: int = 0  # events appended after that position, applied to the shadow before the swap
    tail: int = 0  # of those, the ones applied with appends blocked
    blocked_seconds: float = 0.0  # how long writers of `cases` (and so appends) waited for the tail and swap
    # case id -> why one of its events cannot be read (never a value): not replayed, its stored row is kept
    unreadable: dict[str, str] = field(default_factory=dict)

    def differs(self, case_id: str) -> None:
        self.differing_count += 1
        if len(self.differing) < LISTED:
            self.differing.append(case_id)


async def _no_progress(_: int) -> None:
    return None


async def total_events(conn: Connection) -> int:
    """How many case events the log holds now: the progress bar's 100 %."""
    return await conn.fetchval("SELECT count(*) FROM events WHERE type LIKE 'case.%'")  # type: ignore[no-any-return]


async def check_cases(
    conn: Connection,
    *,
    chunk: int = CHUNK,
    progress: Progress = _no_progress,
    keyring: Keyring | None = None,
) -> RebuildReport:
    """Compare the replay with the stored read model as of one snapshot, taking no lock an append waits for."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        report = RebuildReport()
        async for rows, count in _replayed(conn, chunk, report):
            await _compare(conn, rows, report, keyring)
            await progress(count)
        await _extra_cases(conn, chunk, report)
    report.differing.sort()
    return report


async def rebuild_cases(
    conn: Connection,
    check_only: bool = False,
    *,
    chunk: int = CHUNK,
    progress: Progress = _no_progress,
    keyring: Keyring | None = None,
) -> RebuildReport:
    """Replace the read model with a replay of the log; appends wait only for the tail and the swap.
    With check_only, compare instead and change nothing (see `check_cases`)."""
    if check_only:
        return await check_cases(conn, chunk=chunk, progress=progress, keyring=keyring)
    async with shadow.rebuilding(conn):
        async with conn.transaction(isolation="repeatable_read"):
            report = RebuildReport(position=await shadow.create(conn))
            async for rows, count in _replayed(conn, chunk, report):
                await _compare(conn, rows, report, keyring)
                await shadow.fill(conn, rows)
                await progress(count)
            await _extra_cases(conn, chunk, report)
        await conn.execute(f"ANALYZE {shadow.SHADOW}")
        position, report.caught_up = await shadow.catch_up_unlocked(
            conn, report.position, chunk, report.unreadable
        )
        report.tail, report.blocked_seconds = await shadow.swap(conn, position, chunk, report.unreadable)
        report.caught_up += report.tail
    report.differing.sort()
    return report


async def _replayed(
    conn: Connection, chunk: int, report: RebuildReport
) -> AsyncIterator[tuple[list[tuple[object, ...]], int]]:
    """The read model's rows of the streams each chunk finished, with the number of events in the chunk."""
    cursor = await conn.cursor(
        "SELECT stream_id, type, schema_version, data FROM events WHERE type LIKE 'case.%'"
        " ORDER BY stream_id, version"
    )
    stream: str | None = None
    state: CaseState | None = None
    while rows := await cursor.fetch(chunk):
        finished: list[CaseState] = []
        for stream_id, type_, schema_version, data in rows:
            if stream_id != stream:
                if state is not None:
                    finished.append(state)
                stream, state = stream_id, None
            if stream_id in report.unreadable:
                continue
            try:
                state = evolve(state, read_case_event(type_, schema_version, data))
            except UnreadableEvent as e:  # one stream set aside, never the end of the replay
                report.unreadable[stream_id], state = str(e), None
        report.events += len(rows)
        report.streams += len(finished)
        yield case_rows(finished), len(rows)
    if state is not None:
        report.streams += 1
        yield case_rows([state]), 0


async def _compare(
    conn: Connection, rows: list[tuple[object, ...]], report: RebuildReport, keyring: Keyring | None
) -> None:
    """Each replayed case against its stored row: the JSON text first, the parsed state when the text differs
    (its texts opened, given the keyring)."""
    if not rows:
        return
    found_rows = await conn.fetch(
        "SELECT case_id, state, state_version FROM cases WHERE case_id = ANY($1::text[])",
        [r[0] for r in rows],
    )
    stored = {r["case_id"]: (r["state_version"], r["state"]) for r in found_rows}
    texts = [r["state"] for r in found_rows] + [str(r[_STATE]) for r in rows]
    opener = None if keyring is None else await Opener.for_texts(conn, keyring, texts)
    for row in rows:
        case_id, replayed = str(row[0]), str(row[_STATE])
        found = stored.get(case_id)
        if found is None or (found[1] != replayed and not _same_state(*found, replayed, opener)):
            report.differs(case_id)


def _same_state(version: int, stored: str, replayed: str, opener: Opener | None) -> bool:
    """Equal once read (an older snapshot upcast) and opened; a stored state that cannot be read is a damaged
    row, reported, not a crash. Without keys, sealed texts compare as they are stored."""
    try:
        before, after = SNAPSHOT.read(version, stored), SNAPSHOT.read(SNAPSHOT.version, replayed)
    except UnreadableEvent:
        return False
    return before == after or (opener is not None and opener.value(before) == opener.value(after))


async def _extra_cases(conn: Connection, chunk: int, report: RebuildReport) -> None:
    """Stored cases that no stream in the log explains."""
    cursor = await conn.cursor(
        "SELECT case_id FROM cases c WHERE NOT EXISTS (SELECT 1 FROM events e"
        " WHERE e.stream_id = c.case_id AND e.type LIKE 'case.%')"
    )
    while rows := await cursor.fetch(chunk):
        for row in rows:
            report.differs(row["case_id"])
