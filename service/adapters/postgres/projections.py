"""Rebuild the case read model from the event log, or check that it equals what the log says."""

from __future__ import annotations

from dataclasses import dataclass

from service.adapters.postgres.case_writes import Connection, save_cases
from service.domain.case import CASE_STATE, CaseState, evolve
from service.domain.events import CASE_EVENT


@dataclass(frozen=True)
class RebuildReport:
    streams: int
    events: int
    differing: list[str]  # case ids whose stored read model differs from the replay (or is missing / extra)


async def rebuild_cases(conn: Connection, check_only: bool) -> RebuildReport:
    """Replay the log; with check_only, compare with the stored read model, else replace it in one transaction."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE events IN SHARE MODE")  # no appends while the log is replayed
        states, count = await _replay_locked(conn)
        stored = {
            r["case_id"]: CASE_STATE.validate_json(r["state"])
            for r in await conn.fetch("SELECT case_id, state FROM cases")
        }
        differing = sorted(k for k in states.keys() | stored.keys() if states.get(k) != stored.get(k))
        if not check_only:
            await conn.execute("DELETE FROM cases")
            await save_cases(conn, states.values())
    return RebuildReport(len(states), count, differing)


async def _replay_locked(conn: Connection) -> tuple[dict[str, CaseState], int]:
    states: dict[str, CaseState] = {}
    count = 0
    rows = await conn.fetch(
        "SELECT stream_id, data::text FROM events WHERE type LIKE 'case.%' ORDER BY stream_id, version"
    )
    for row in rows:
        states[row["stream_id"]] = evolve(states.get(row["stream_id"]), CASE_EVENT.validate_json(row["data"]))
        count += 1
    return states, count
