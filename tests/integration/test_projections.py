"""`recovery projections rebuild` produces exactly the read model the live service built."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bench.signal_mix import publish_mix, signal_mix
from service.adapters.postgres import projection_swap
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.projection_swap import RebuildRunning
from service.adapters.postgres.projections import check_cases, rebuild_cases
from service.adapters.sentiment import VaderSentiment
from service.app.intake import IntakeResult, apply_signals
from service.bootstrap import SystemClock, intake_rules
from service.config import Settings
from service.domain.case import CASE_STATE, CaseState, evolve
from service.domain.events import CASE_EVENT
from service.domain.signals import Signal, SignalKind
from tests.support import AGENT, MANAGER, eventually, recovery_cli, suite_keyring


async def work_some_cases(api: httpx.AsyncClient, ids: list[str]) -> None:
    for n, case_id in enumerate(ids[:5]):
        path = f"/v1/cases/{case_id}"
        await api.post(f"{path}/assign", json={"owner": "ana"}, headers=MANAGER)
        await api.post(f"{path}/steps", json={"kind": "email_customer"}, headers=AGENT)
        await api.post(f"{path}/steps/step-1/outcome", json={"outcome": "completed"}, headers=AGENT)
        comp = {"kind": "credit", "amount": "20", "currency": "EUR", "reason": "sorry"}
        await api.post(f"{path}/compensations", json=comp, headers=AGENT)
        body = {"resolution_type": "service_credit", "root_cause": "scheduling", "prevention_action": "x"}
        await api.post(f"{path}/resolve", json=body, headers=MANAGER)
        await api.post(f"{path}/follow-up", json={"satisfied": n % 2 == 0}, headers=AGENT)


async def test_the_rebuilt_read_model_equals_the_live_one_and_repairs_a_damaged_one(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, database_url: str
) -> None:
    await publish_mix(producer, settings.signal_topics(), list(signal_mix(1500, customers=200, seed=9)))
    conn = await asyncpg.connect(database_url)
    try:

        async def applied() -> bool:
            return await conn.fetchval("SELECT count(*) FROM signal_log") == 1500

        await eventually(applied, what="the signals applied")
        ids: list[Any] = await conn.fetchval(
            "SELECT array_agg(case_id ORDER BY case_id) FROM cases WHERE status = 'open'"
        )
        await work_some_cases(api, ids)
        report = await rebuild_cases(conn, check_only=True)
        assert report.streams == await conn.fetchval("SELECT count(*) FROM cases")
        assert report.differing == []

        checked = recovery_cli(database_url, "projections", "rebuild", "--check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert " 0 differ" in checked.stdout
        await conn.execute(
            "UPDATE cases SET state = (SELECT state FROM cases WHERE case_id = $1) WHERE case_id = $2",
            ids[0],
            ids[1],
        )
        damaged = recovery_cli(database_url, "projections", "rebuild", "--check")
        assert damaged.returncode == 1 and ids[1] in damaged.stdout
        assert recovery_cli(database_url, "projections", "rebuild").returncode == 0
        assert (await rebuild_cases(conn, check_only=True)).differing == []

        listed = recovery_cli(database_url, "cases", "list", "--status", "closed")
        assert listed.returncode == 0 and ids[0] in listed.stdout
        shown = recovery_cli(database_url, "cases", "show", ids[0])
        assert shown.returncode == 0 and '"case.closed"' in shown.stdout
        trends = recovery_cli(database_url, "trends")
        assert "scheduling" in trends.stdout
    finally:
        await conn.close()


# The rebuild that scales: chunked, into a shadow, swapped in with appends blocked only for the tail.

NOW = datetime.now(UTC)
RULES = intake_rules(Settings())


def nps(n: int, customer: str, score: int = 2) -> Signal:
    at = NOW + timedelta(seconds=n)
    return Signal(
        source="s",
        id=f"sig-{n}",
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id=customer,
        score=score,
    )


async def apply(pool: asyncpg.Pool, *signals: Signal) -> IntakeResult:
    """Through the real write path: the intake's transaction (cases, then events under the append lock)."""
    return await apply_signals(
        list(signals), {}, "g", PostgresIntakeStore(pool, suite_keyring()), RULES, VaderSentiment(), SystemClock()
    )


async def seed(pool: asyncpg.Pool, customers: int, per_customer: int, start: int = 0) -> int:
    """Cases with several events each (opened, signals attached, escalations); returns the next signal number."""
    n = start
    for round_ in range(per_customer):
        batch = []
        for c in range(customers):
            batch.append(nps(n, f"cust-{c}", score=(c + round_) % 4))
            n += 1
        await apply(pool, *batch)
    return n


async def live_states(conn: asyncpg.Connection) -> dict[str, CaseState]:
    rows = await conn.fetch("SELECT case_id, state FROM cases")
    return {r["case_id"]: CASE_STATE.validate_json(r["state"]) for r in rows}


async def in_memory_replay(conn: asyncpg.Connection) -> dict[str, CaseState]:
    """The old rebuild's replay: the whole log in memory at once."""
    states: dict[str, CaseState] = {}
    rows = await conn.fetch(
        "SELECT stream_id, data::text FROM events WHERE type LIKE 'case.%' ORDER BY stream_id, version"
    )
    for row in rows:
        states[row["stream_id"]] = evolve(states.get(row["stream_id"]), CASE_EVENT.validate_json(row["data"]))
    return states


async def names_on_cases(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'cases' ORDER BY 1")
    constraints = await conn.fetch(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'cases'::regclass ORDER BY 1"
    )
    return [r[0] for r in indexes], [r[0] for r in constraints]


async def test_the_chunked_replay_equals_the_all_in_memory_replay_on_a_log_of_many_streams(
    pool: asyncpg.Pool,
) -> None:
    await seed(pool, customers=150, per_customer=4)
    async with pool.acquire() as conn:
        expected = await in_memory_replay(conn)
        assert len(expected) >= 150
        for chunk in (1, 7, 5000):  # a stream split over many chunks, over a few, and the whole log in one
            checked = await check_cases(conn, chunk=chunk)
            assert (checked.streams, checked.differing) == (len(expected), [])
            assert checked.events == await conn.fetchval(
                "SELECT count(*) FROM events WHERE type LIKE 'case.%'"
            )
            await conn.execute(
                "UPDATE cases SET state = '{}'::json"
            )  # the rebuild must not read the old model
            report = await rebuild_cases(conn, chunk=chunk)
            assert report.streams == len(expected) and report.differing_count == len(expected)
            assert await live_states(conn) == expected

        damaged, missing = sorted(expected)[:2]
        await conn.execute(
            "UPDATE cases SET state = (SELECT state FROM cases WHERE case_id = $1) WHERE case_id = $2",
            missing,
            damaged,
        )
        await conn.execute("DELETE FROM cases WHERE case_id = $1", missing)
        await conn.execute(
            "INSERT INTO cases SELECT 'extra', 'nobody', ordinal, 'closed', severity, owner, opened_at,"
            " first_response_deadline, resolution_deadline, version, state FROM cases WHERE case_id = $1",
            damaged,
        )
        assert (await check_cases(conn, chunk=7)).differing == sorted([damaged, missing, "extra"])


async def test_the_rebuild_equals_the_live_read_model_with_appends_running_during_it(
    pool: asyncpg.Pool,
) -> None:
    next_signal = await seed(pool, customers=100, per_customer=3)
    async with pool.acquire() as conn:
        names_before = await names_on_cases(conn)
    sent: list[Signal] = []
    results: list[IntakeResult] = []
    stop = asyncio.Event()

    async def appender() -> None:
        """Signals for old customers (attached to their cases) and new ones (new cases), batch after batch."""
        n = next_signal
        while not stop.is_set():
            batch = [nps(n, f"cust-{n % 130}"), nps(n + 1, f"new-{n}")]
            n += 2
            results.append(await apply(pool, *batch))
            sent.extend(batch)

    def committed(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(results) >= count

        return check

    async def appends_during_replay(_: int) -> None:
        """Each chunk waits until two more batches committed: appends demonstrably ran during the replay."""
        await eventually(committed(len(results) + 2), what="appends during the replay")

    task = asyncio.create_task(appender())
    async with pool.acquire() as conn:
        report = await rebuild_cases(conn, chunk=100, progress=appends_during_replay)
        await eventually(committed(len(results) + 5), what="appends into the new table")
        stop.set()
        await task  # an append that failed would raise here

        assert report.caught_up > 0 and report.position > 0
        assert sum(r.conflicts for r in results) == 0  # no append lost a race or met a deadlock
        assert all(len(r.applied) == 2 for r in results)
        assert await conn.fetchval(
            "SELECT count(*) FROM signal_log WHERE signal_id = ANY($1::text[])", [s.id for s in sent]
        ) == len(sent)
        checked = await check_cases(conn)
        assert checked.differing == []
        assert checked.streams == await conn.fetchval("SELECT count(*) FROM cases")
        assert await live_states(conn) == await in_memory_replay(conn)
        assert await names_on_cases(conn) == names_before
        assert "cases_one_open_per_customer" in names_before[0] and "cases_pkey" in names_before[1]
        assert await conn.fetchval("SELECT to_regclass('cases_rebuild')") is None


async def test_events_appended_after_the_shadows_position_appear_in_the_swapped_read_model(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(pool, customers=40, per_customer=2)
    original_swap = projection_swap.swap

    async def append_then_swap(
        conn: asyncpg.Connection, since: int, chunk: int, unreadable: dict[str, str]
    ) -> tuple[int, float]:
        """After the unlocked catch-up: these events are left for the locked tail."""
        await apply(pool, nps(9001, "cust-3"), nps(9002, "tail-customer"))
        return await original_swap(conn, since, chunk, unreadable)

    async def append_during_replay(_: int) -> None:
        if not await pool.fetchval("SELECT count(*) FROM signal_log WHERE signal_id = 'sig-9000'"):
            await apply(pool, nps(9000, "replay-customer"))

    monkeypatch.setattr(projection_swap, "swap", append_then_swap)
    async with pool.acquire() as conn:
        report = await rebuild_cases(conn, chunk=10, progress=append_during_replay)
        assert report.tail >= 2  # the attach to cust-3's case and tail-customer's case.opened
        assert report.caught_up >= report.tail + 1  # and replay-customer's case.opened before the lock
        live = await live_states(conn)
        by_customer = {state.customer_id: state for state in live.values()}
        assert {"replay-customer", "tail-customer"} <= by_customer.keys()
        assert by_customer["cust-3"].signal_count == 3
        assert live == await in_memory_replay(conn)
        assert (await check_cases(conn)).differing == []


async def test_an_append_during_the_swap_waits_for_it_and_lands_in_the_new_read_model(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(pool, customers=20, per_customer=2)
    original_replace = projection_swap._replace
    appends: list[asyncio.Task[IntakeResult]] = []

    async def replace_with_an_append_waiting(conn: asyncpg.Connection) -> None:
        """Inside the swap's transaction, both locks held: an append starts and must wait, not fail."""
        appends.append(asyncio.create_task(apply(pool, nps(7000, "cust-2"), nps(7001, "swap-customer"))))

        async def waiting() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> $1 AND wait_event_type = 'Lock'",
                    conn.get_server_pid(),
                )
            )

        await eventually(waiting, timeout=30, what="the append waiting for the swap")
        await original_replace(conn)

    monkeypatch.setattr(projection_swap, "_replace", replace_with_an_append_waiting)
    async with pool.acquire() as conn:
        await rebuild_cases(conn, chunk=10)
        [append] = appends
        result = await append
        assert len(result.applied) == 2 and result.conflicts == 0
        live = await live_states(conn)
        assert "swap-customer" in {state.customer_id for state in live.values()}
        assert live == await in_memory_replay(conn)
        assert (await check_cases(conn)).differing == []


async def test_check_takes_no_lock_an_append_waits_for(pool: asyncpg.Pool) -> None:
    await seed(pool, customers=30, per_customer=2)
    before = await pool.fetchval("SELECT count(*) FROM cases")
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_midway(_: int) -> None:
        if not held.is_set():
            held.set()
            await release.wait()

    async with pool.acquire() as checker:
        check = asyncio.create_task(check_cases(checker, chunk=5, progress=hold_midway))
        try:
            await held.wait()
            pid = checker.get_server_pid()
            locks = await pool.fetch("SELECT locktype, mode FROM pg_locks WHERE pid = $1 AND granted", pid)
            held_modes = {r["mode"] for r in locks if r["locktype"] in ("relation", "advisory")}
            assert held_modes == {"AccessShareLock"}  # what a plain SELECT takes: no writer waits for it
            appended = apply(pool, nps(500, "cust-1"), nps(501, "mid-check"))
            result = await asyncio.wait_for(appended, timeout=30)  # committed while the check is held
            assert len(result.applied) == 2 and result.events >= 2
            assert await pool.fetchval("SELECT count(*) FROM cases WHERE customer_id = 'mid-check'") == 1
        finally:
            release.set()
        report = await check
    assert report.differing == []  # the snapshot predates the append on both sides: nothing to report
    assert report.streams == before
    async with pool.acquire() as conn:
        assert (await check_cases(conn)).streams == before + 1


async def test_a_second_rebuild_is_refused_while_one_runs(pool: asyncpg.Pool) -> None:
    await seed(pool, customers=10, per_customer=1)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(_: int) -> None:
        held.set()
        await release.wait()

    async with pool.acquire() as first, pool.acquire() as second:
        running = asyncio.create_task(rebuild_cases(first, chunk=5, progress=hold))
        try:
            await held.wait()
            with pytest.raises(RebuildRunning):
                await rebuild_cases(second)
        finally:
            release.set()
        assert (await running).streams == await second.fetchval("SELECT count(*) FROM cases") > 0
        assert (await check_cases(second)).differing == []


async def test_the_rebuild_keeps_the_grants_other_roles_hold_on_cases(pool: asyncpg.Pool) -> None:
    await seed(pool, customers=5, per_customer=1)
    grants = (
        "SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable"
        " FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE c.oid = 'cases'::regclass AND a.grantee <> c.relowner ORDER BY 1, 2"
    )
    async with pool.acquire() as conn:
        await conn.execute('DROP ROLE IF EXISTS "cx reporting"')
        await conn.execute('CREATE ROLE "cx reporting"')
        try:
            await conn.execute('GRANT SELECT ON cases TO "cx reporting" WITH GRANT OPTION')
            await conn.execute('GRANT UPDATE ON cases TO "cx reporting"')
            before = [tuple(r) for r in await conn.fetch(grants)]
            assert len(before) == 2
            report = await rebuild_cases(conn, chunk=3)
            assert report.streams == 5
            assert [tuple(r) for r in await conn.fetch(grants)] == before
        finally:
            await conn.execute('REVOKE ALL ON cases FROM "cx reporting"')
            await conn.execute('DROP ROLE "cx reporting"')
