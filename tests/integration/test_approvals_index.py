"""Managers' approvals list from an index: cases.awaiting_approval follows the domain's rule on every save,
migration 015 backfills it from the snapshots, and the list is read through the index, not a scan."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg

from service.adapters.postgres.case_reads import APPROVALS, PostgresCaseReads
from service.adapters.postgres.case_writes import save_cases
from service.domain.case import CaseState, CaseStatus, Compensation, CompensationStatus, awaiting_approval
from service.domain.events import CompensationKind
from service.domain.registry import SNAPSHOT
from tests.cases import T0, open_case
from tests.integration.test_upgrade import Release, release, upgraded
from tests.support import migration_backfill, suite_keyring

__all__ = ["release", "upgraded"]  # the fixtures, shared with test_upgrade


def compensation(n: int, status: CompensationStatus) -> Compensation:
    return Compensation(
        request_id=f"req-{n}",
        kind=CompensationKind.CREDIT,
        amount=Decimal("25.00"),
        currency="EUR",
        reason="late technician",
        requested_by="ana",
        requested_at=T0,
        status=status,
        needs_approval=("over_agent_limit",) if status is CompensationStatus.AWAITING_APPROVAL else (),
    )


WAITING, SENT = CompensationStatus.AWAITING_APPROVAL, CompensationStatus.REQUESTED


def cases() -> list[CaseState]:
    """Six cases, in resolution-deadline order: three of them wait for an approval and are not closed."""
    shapes = [
        (CaseStatus.OPEN, (WAITING,)),
        (CaseStatus.OPEN, (SENT,)),
        (CaseStatus.OPEN, (SENT, WAITING)),
        (CaseStatus.RESOLVED, (WAITING,)),
        (CaseStatus.CLOSED, (WAITING,)),  # a closed case is never listed
        (CaseStatus.OPEN, ()),
    ]
    return [
        open_case(
            f"case-{n}",
            f"cust-{n}",
            version=1,
            status=status,
            resolution_deadline=T0 + timedelta(hours=n),
            resolved_at=None if status is CaseStatus.OPEN else T0,
            compensations=tuple(compensation(n * 10 + i, s) for i, s in enumerate(statuses)),
        )
        for n, (status, statuses) in enumerate(shapes, start=1)
    ]


async def columns(conn: asyncpg.Connection) -> dict[str, tuple[bool, bool]]:
    """Per case: the column, and the domain's awaiting_approval of its snapshot."""
    rows = await conn.fetch("SELECT case_id, state, state_version, awaiting_approval FROM cases")
    return {
        r["case_id"]: (
            r["awaiting_approval"],
            awaiting_approval(SNAPSHOT.read(r["state_version"], r["state"])),
        )
        for r in rows
    }


async def test_every_save_writes_the_domains_answer_and_the_list_reads_it(pool: asyncpg.Pool) -> None:
    states = cases()
    async with pool.acquire() as conn:
        async with conn.transaction():
            await save_cases(conn, states)
        found = await columns(conn)
    assert [found[s.case_id][0] for s in states] == [True, False, True, True, True, False]
    listed, cursor = await PostgresCaseReads(pool, suite_keyring()).awaiting_approval(2, None)
    assert [c.case_id for c in listed] == ["case-1", "case-3"] and cursor is not None
    rest, last = await PostgresCaseReads(pool, suite_keyring()).awaiting_approval(2, cursor)
    assert [c.case_id for c in rest] == ["case-4"] and last is None

    approved = (compensation(10, SENT),)  # case-1's compensation, approved and sent
    async with pool.acquire() as conn, conn.transaction():
        await save_cases(conn, [open_case("case-1", "cust-1", version=2, compensations=approved)])
    listed, _ = await PostgresCaseReads(pool, suite_keyring()).awaiting_approval(10, None)
    assert [c.case_id for c in listed] == ["case-3", "case-4"]  # approved: off the list at once


async def test_the_backfill_gives_what_the_domain_gives(pool: asyncpg.Pool) -> None:
    states = cases()
    async with pool.acquire() as conn:
        async with conn.transaction():
            await save_cases(conn, states)
        await conn.execute("UPDATE cases SET awaiting_approval = false")
        await conn.execute(migration_backfill("015_cases_awaiting_approval.sql"))
        found = await columns(conn)
    assert {case_id: column for case_id, (column, _) in found.items()} == {
        case_id: domain for case_id, (_, domain) in found.items()
    }
    assert sum(column for column, _ in found.values()) == 4


async def test_a_store_of_the_previous_release_gets_the_column_the_domain_gives(
    upgraded: asyncpg.Pool, release: Release
) -> None:
    async with upgraded.acquire() as conn:
        found = await columns(conn)
    assert len(found) == len(release.rows("cases"))
    assert {case_id: column for case_id, (column, _) in found.items()} == {
        case_id: domain for case_id, (_, domain) in found.items()
    }


async def test_the_list_is_read_through_its_index(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await save_cases(conn, cases())
        await conn.execute("SET LOCAL enable_seqscan = off")  # a six-row table: ask what the plan can use
        plan = await conn.fetch("EXPLAIN " + APPROVALS.format(after=""), 51)
    assert "cases_approvals" in "\n".join(r[0] for r in plan)
