"""A database written by an earlier release upgrades in place and replays unchanged.

Each fixture (tests/fixtures/store-<release>, made by tests/fixtures/make_upgrade_store.py with that release's
own code; today store-d895ed0) holds the release's event log and case snapshots: every stored event type,
through its intake, HTTP commands, SLA timers and billing's answers. It is loaded into a database at that
release's schema, migrated to this build's, checked and rebuilt by the operator's command, read by the relay's
feed, and worked on. A new release's fixture is one more folder: every test here runs on each.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.erasure import PostgresErasureStore
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.migrate import migrate
from service.adapters.postgres.projections import check_cases, rebuild_cases
from service.adapters.sentiment import VaderSentiment
from service.app.erasure import erase_customer
from service.app.intake import apply_signals
from service.bootstrap import SystemClock, intake_rules
from service.config import Settings
from service.domain.case import CaseState
from service.domain.registry import EVENTS, SNAPSHOT, read_event
from service.domain.signals import Signal, SignalKind
from service.domain.workflow import Actor
from tests.integration.api_only import api_over
from tests.support import MANAGER, recovery_cli, suite_keyring

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures").glob("store-*"))
TOPICS = OutgoingTopics("case-events", "sla", "compensation", "trends")


@dataclasses.dataclass(frozen=True)
class Release:
    """A store an earlier release wrote, as its fixture folder holds it."""

    folder: Path

    def rows(self, table: str) -> list[dict[str, Any]]:
        lines = (self.folder / f"{table}.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def migrations(self) -> list[str]:
        return json.loads((self.folder / "migrations.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def snapshots(self) -> dict[str, CaseState]:
        """What the release's snapshots said, read by this build (upcast from the version the release wrote)."""
        return {
            r["case_id"]: SNAPSHOT.read(r.get("state_version", 1), json.dumps(r["state"]))
            for r in self.rows("cases")
        }


@pytest.fixture(params=FIXTURES, ids=lambda folder: folder.name)
def release(request: pytest.FixtureRequest) -> Release:
    return Release(request.param)


async def load_release_store(conn: asyncpg.Connection, release: Release) -> None:
    """The release's schema (its migrations, no later one) and its tables as it wrote them."""
    released = release.migrations()
    folder = resources.files("service.adapters.postgres") / "migrations"
    await conn.execute(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for name in released:
        await conn.execute((folder / name).read_text(encoding="utf-8"))
        await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    for table in ("events", "cases"):
        text = (release.folder / f"{table}.jsonl").read_text(encoding="utf-8")
        array = "[" + ",".join(text.splitlines()) + "]"
        await conn.execute(
            f"INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::json)", array
        )
    await conn.execute("SELECT setval('events_position_seq', (SELECT max(position) FROM events))")


@pytest.fixture
async def upgraded(database_url: str, release: Release) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database_url)
    try:
        await load_release_store(conn, release)
        applied = await migrate(conn)
    finally:
        await conn.close()
    everything = sorted(
        f.name for f in (resources.files("service.adapters.postgres") / "migrations").iterdir()
    )
    assert applied == [
        name for name in everything if name.endswith(".sql") and name not in release.migrations()
    ]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def test_the_fixture_holds_every_event_type_the_release_stored(release: Release) -> None:
    released_types = {r["type"] for r in release.rows("events")}
    assert len(released_types) >= 19 and released_types <= EVENTS.keys()  # d895ed0 stored 19 types
    assert len(release.rows("cases")) >= 14


async def test_a_store_of_the_previous_release_checks_equal_and_rebuilds_to_its_snapshots(
    upgraded: asyncpg.Pool, database_url: str, release: Release
) -> None:
    checked = recovery_cli(database_url, "projections", "rebuild", "--check", "--quiet")

    async with upgraded.acquire() as conn:
        report = await rebuild_cases(conn)
        stored = await conn.fetch("SELECT case_id, state, state_version FROM cases")
    rebuilt = {r["case_id"]: SNAPSHOT.read(r["state_version"], r["state"]) for r in stored}
    released = release.snapshots()
    assert rebuilt.keys() == released.keys()
    # A field a replay fills in from the old events but the old snapshots lack needs a snapshot upcaster (or a
    # replay that leaves it as an old snapshot has it): these are the fields that differ, by case.
    assert differing_fields(rebuilt, released) == {}
    assert rebuilt == released
    case_events = [r for r in release.rows("events") if r["type"].startswith("case.")]
    assert (report.streams, report.events, report.differing) == (
        len(release.rows("cases")),
        len(case_events),
        [],
    )
    assert {r["state_version"] for r in stored} == {SNAPSHOT.version}
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 differ" in checked.stdout


async def test_cases_of_the_previous_release_take_new_signals_and_commands_and_still_replay_equal(
    upgraded: asyncpg.Pool, database_url: str, release: Release
) -> None:
    """The hot paths read the release's snapshots (intake, commands) and append this build's events after its
    own: the log, now of both releases, still replays to the read model."""
    released = release.snapshots()
    by_customer = {s.customer_id: s for s in released.values()}
    callback, money = by_customer["c-callback"], by_customer["c-money"]
    now = datetime.now(UTC)
    signal = Signal(
        source="after-upgrade",
        id="s-1",
        kind=SignalKind.COMPLAINT,
        occurred_at=now,
        received_at=now,
        customer_id="c-callback",
        text="Nobody came again, the house is flooded, this is a disgrace",
    )
    rules = intake_rules(Settings(database_url=database_url))
    store = PostgresIntakeStore(upgraded, suite_keyring())
    result = await apply_signals([signal], {}, "g", store, rules, VaderSentiment(), SystemClock())
    assert result.events >= 1
    async with api_over(upgraded, database_url) as api:
        assigned = await api.post(f"/v1/cases/{money.case_id}/assign", json={"owner": "ana"}, headers=MANAGER)
    assert assigned.status_code == 200, assigned.text

    async with upgraded.acquire() as conn:
        report = await check_cases(conn, keyring=suite_keyring())  # old texts in clear beside sealed ones
        versions = dict(await conn.fetch("SELECT case_id, version FROM cases"))
    assert (report.differing, report.unreadable) == ([], {})
    assert versions[callback.case_id] > callback.version and versions[money.case_id] == money.version + 1


def differing_fields(a: dict[str, CaseState], b: dict[str, CaseState]) -> dict[str, list[str]]:
    names = [f.name for f in dataclasses.fields(CaseState)]
    found = {case_id: [n for n in names if getattr(a[case_id], n) != getattr(b[case_id], n)] for case_id in a}
    return {case_id: differing for case_id, differing in found.items() if differing}


async def test_every_event_of_the_previous_release_is_read_and_published(
    upgraded: asyncpg.Pool, release: Release
) -> None:
    async with PostgresEventFeed(upgraded).lease("upgrade-test") as lease:
        assert lease is not None
        events = await lease.read_after(0, 1000)
    assert [(e.position, e.schema_version) for e in events] == [
        (r["position"], r.get("schema_version", 1)) for r in release.rows("events")
    ]
    for event in events:
        assert read_event(event.type, event.schema_version, event.data).type == event.type
        assert to_messages(event, TOPICS), event.type  # every released type goes out somewhere

    reads = PostgresCaseReads(upgraded, suite_keyring())
    for case_id, snapshot in release.snapshots().items():
        found = await reads.get_case(case_id)
        assert found is not None
        case, history = found
        assert case.state == snapshot and [e.version for e in history] == list(range(1, snapshot.version + 1))


async def test_an_event_this_build_cannot_read_sets_its_case_aside_and_never_stops_a_rebuild(
    upgraded: asyncpg.Pool, database_url: str, release: Release
) -> None:
    """An unknown type, and a known type at a version newer than this build, each stored on a case; a third
    arrives while the rebuild runs. Each case keeps the row its writer stored; every other case is rebuilt."""
    streams = sorted({r["stream_id"] for r in release.rows("events") if r["type"].startswith("case.")})
    unknown, newer, during = streams[:3]
    append = (
        "INSERT INTO events (stream_id, version, event_id, type, data, schema_version)"
        " SELECT $1, max(version) + 1, gen_random_uuid(), $2, $3::json, $4 FROM events WHERE stream_id = $1"
    )
    async with upgraded.acquire() as conn:
        await conn.execute(append, unknown, "case.exploded", '{"type": "case.exploded"}', 1)
        await conn.execute(append, newer, "case.assigned", '{"type": "case.assigned", "owner": "x"}', 9)
        before = {r["case_id"]: r["state"] for r in await conn.fetch("SELECT case_id, state FROM cases")}

    checked = recovery_cli(database_url, "projections", "rebuild", "--check", "--quiet")
    assert checked.returncode == 1
    assert (
        f"unreadable, kept as stored: {unknown}: stored event type 'case.exploded' is not a registered"
        in (checked.stdout)
    )
    assert (
        f"unreadable, kept as stored: {newer}: case.assigned is stored at schema version 9" in checked.stdout
    )

    async def append_during(_: int) -> None:
        async with upgraded.acquire() as other:
            if not await other.fetchval("SELECT count(*) FROM events WHERE type = 'case.later'"):
                await other.execute(append, during, "case.later", '{"type": "case.later"}', 1)

    async with upgraded.acquire() as conn:
        report = await rebuild_cases(conn, chunk=10, progress=append_during)
        after = {r["case_id"]: r["state"] for r in await conn.fetch("SELECT case_id, state FROM cases")}
    assert report.unreadable.keys() == {unknown, newer, during} and report.caught_up >= 1
    assert after.keys() == before.keys()
    assert {c: after[c] for c in (unknown, newer, during)} == {c: before[c] for c in (unknown, newer, during)}


async def test_a_customer_of_the_previous_release_is_erased_clear_texts_in_its_old_events_included(
    upgraded: asyncpg.Pool, release: Release
) -> None:
    """Events written before texts were sealed hold them in clear: an erasure rewrites them too, and the case
    keeps the id the release gave it."""
    [(case_id, closed)] = [(i, s) for i, s in release.snapshots().items() if s.customer_id == "c-ticket"]
    assert closed.resolution is not None and closed.resolution.prevention_action == "a fixture action"
    erasure = await erase_customer(
        "c-ticket", Actor("olu", "owner"), PostgresErasureStore(upgraded, suite_keyring())
    )
    assert erasure.case_ids == (case_id,)
    for needle in ("c-ticket", "a fixture action"):
        held = await upgraded.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND data::text LIKE '%' || $2 || '%'"
            " AND type <> 'case.personal_data_erased'",
            case_id,
            needle,
        )
        assert held == 0, needle
    async with upgraded.acquire() as conn:
        await rebuild_cases(conn, keyring=suite_keyring())
        assert (await check_cases(conn, keyring=suite_keyring())).differing == []
    found = await PostgresCaseReads(upgraded, suite_keyring()).get_case(case_id)
    assert found is not None and found[0].state.customer_id == erasure.pseudonym
    assert found[0].state.resolution is not None and found[0].state.resolution.root_cause == closed.resolution.root_cause
