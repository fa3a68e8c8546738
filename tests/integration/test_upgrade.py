"""A database written by the previous release upgrades in place and replays unchanged.

The fixture (tests/fixtures/store-d895ed0, made by tests/fixtures/make_upgrade_store.py with release d895ed0's
own code) holds that release's event log and case snapshots: every stored event type, through its intake, HTTP
commands, SLA timers and billing's answers. It is loaded into a database at that release's schema, migrated to
this build's, checked and rebuilt by the operator's command, and read by the relay's feed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.adapters.postgres.migrate import migrate
from service.adapters.postgres.projections import rebuild_cases
from service.domain.case import CaseState
from service.domain.registry import EVENTS, SNAPSHOT, read_event
from tests.support import recovery_cli

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-d895ed0"
TOPICS = OutgoingTopics("case-events", "sla", "compensation", "trends")


def rows(table: str) -> list[dict[str, Any]]:
    lines = (FIXTURE / f"{table}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def load_release_store(conn: asyncpg.Connection) -> None:
    """The release's schema (its migrations, no later one) and its tables as it wrote them."""
    released = json.loads((FIXTURE / "migrations.json").read_text(encoding="utf-8"))
    folder = resources.files("service.adapters.postgres") / "migrations"
    await conn.execute(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for name in released:
        await conn.execute((folder / name).read_text(encoding="utf-8"))
        await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    for table in ("events", "cases"):
        text = (FIXTURE / f"{table}.jsonl").read_text(encoding="utf-8")
        array = "[" + ",".join(text.splitlines()) + "]"
        await conn.execute(
            f"INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::json)", array
        )
    await conn.execute("SELECT setval('events_position_seq', (SELECT max(position) FROM events))")


@pytest.fixture
async def upgraded(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database_url)
    try:
        await load_release_store(conn)
        applied = await migrate(conn)
    finally:
        await conn.close()
    assert "012_schema_versions.sql" in applied
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def released_snapshots() -> dict[str, CaseState]:
    """What the release's snapshots said, read by this build (upcast from the version the release wrote)."""
    return {r["case_id"]: SNAPSHOT.read(1, json.dumps(r["state"])) for r in rows("cases")}


def test_the_fixture_holds_every_event_type_the_release_stored() -> None:
    released_types = {r["type"] for r in rows("events")}
    assert len(released_types) == 19 and released_types <= EVENTS.keys()
    assert len(rows("cases")) >= 14


async def test_a_store_of_the_previous_release_checks_equal_and_rebuilds_to_its_snapshots(
    upgraded: asyncpg.Pool, database_url: str
) -> None:
    checked = recovery_cli(database_url, "projections", "rebuild", "--check", "--quiet")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 differ" in checked.stdout

    async with upgraded.acquire() as conn:
        report = await rebuild_cases(conn)
        stored = await conn.fetch("SELECT case_id, state, state_version FROM cases")
    case_events = [r for r in rows("events") if r["type"].startswith("case.")]
    assert (report.streams, report.events, report.differing) == (len(rows("cases")), len(case_events), [])
    assert {r["state_version"] for r in stored} == {SNAPSHOT.version}
    rebuilt = {r["case_id"]: SNAPSHOT.read(r["state_version"], r["state"]) for r in stored}
    assert rebuilt == released_snapshots()


async def test_every_event_of_the_previous_release_is_read_and_published(upgraded: asyncpg.Pool) -> None:
    async with PostgresEventFeed(upgraded).lease("upgrade-test") as lease:
        assert lease is not None
        events = await lease.read_after(0, 1000)
    assert [e.position for e in events] == [r["position"] for r in rows("events")]
    for event in events:
        assert event.schema_version == 1
        assert read_event(event.type, event.schema_version, event.data).type == event.type
        assert to_messages(event, TOPICS), event.type  # every released type goes out somewhere

    reads = PostgresCaseReads(upgraded)
    for case_id, snapshot in released_snapshots().items():
        found = await reads.get_case(case_id)
        assert found is not None
        case, history = found
        assert case.state == snapshot and [e.version for e in history] == list(range(1, snapshot.version + 1))
