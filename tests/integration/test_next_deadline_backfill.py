"""Migration 014's backfill of cases.next_deadline gives what the domain's next_deadline gives: on a store of the
previous release migrated to head, and run again over cases with named clocks and pauses."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg

from service.adapters.postgres.case_writes import save_cases
from service.domain.case import CaseState, CaseStatus, next_deadline
from service.domain.registry import SNAPSHOT
from service.domain.sla import PauseReason, PauseSpan, SlaClock
from tests.integration.test_upgrade import Release, release, upgraded

__all__ = ["release", "upgraded"]  # the fixtures, shared with test_upgrade

from tests.cases import T0, open_case
from tests.support import migration_backfill

AUDIT = SlaClock(name="audit", started_at=T0, deadline=T0 + timedelta(minutes=30))
REGULATORY = SlaClock(name="regulatory", started_at=T0, deadline=T0 + timedelta(hours=6), pausable=False)


def case(n: int, **changes: object) -> CaseState:
    return open_case(f"case-{n}", f"cust-{n}", **{"version": 1, **changes})


def paused_at(minutes: int, ended: bool = False) -> tuple[PauseSpan, ...]:
    at = T0 + timedelta(minutes=minutes)
    return (PauseSpan(reason=PauseReason.AWAITING_PARTS, started_at=at, ended_at=at if ended else None),)


async def deadlines(conn: asyncpg.Connection) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per case: the column, and the domain's next_deadline of its snapshot."""
    rows = await conn.fetch("SELECT case_id, state, state_version, next_deadline FROM cases")
    return {
        r["case_id"]: (r["next_deadline"], next_deadline(SNAPSHOT.read(r["state_version"], r["state"])))
        for r in rows
    }


async def test_a_store_of_the_previous_release_gets_the_next_deadline_the_domain_gives(
    upgraded: asyncpg.Pool, release: Release
) -> None:
    async with upgraded.acquire() as conn:
        found = await deadlines(conn)
    assert len(found) == len(release.rows("cases"))
    assert {case_id: column for case_id, (column, _) in found.items()} == {
        case_id: domain for case_id, (_, domain) in found.items()
    }
    assert any(column is not None for column, _ in found.values())  # open cases among them


async def test_the_backfill_follows_named_clocks_stops_and_pauses_as_the_domain_does(
    pool: asyncpg.Pool,
) -> None:
    states = [
        case(1),
        case(2, acknowledged_at=T0),
        case(3, clocks=(AUDIT,)),
        case(4, clocks=(replace(AUDIT, stopped_at=T0),)),
        case(5, clocks=(AUDIT,), pauses=paused_at(10)),  # every clock held: no next deadline
        case(6, clocks=(AUDIT, REGULATORY), pauses=paused_at(10)),  # the one that ignores pauses runs
        case(7, clocks=(AUDIT,), pauses=paused_at(45)),  # audit breached before the pause: not held
        case(8, clocks=(AUDIT,), pauses=paused_at(10, ended=True)),
        case(9, status=CaseStatus.RESOLVED, resolved_at=T0, acknowledged_at=T0),
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await save_cases(conn, states)
        await conn.execute("UPDATE cases SET next_deadline = NULL")
        await conn.execute(migration_backfill("014_cases_next_deadline.sql"))
        found = await deadlines(conn)
    assert [found[s.case_id][0] for s in states] == [next_deadline(s) for s in states]
    assert [found[s.case_id][0] for s in states] == [
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=24),
        T0 + timedelta(minutes=30),
        T0 + timedelta(hours=1),
        None,
        T0 + timedelta(hours=6),
        T0 + timedelta(minutes=30),
        T0 + timedelta(minutes=30),
        None,
    ]
