"""A new SLA policy version corrects the open cases: `recovery policy diff` previews exactly what `apply` then
appends and writes nothing; start-up applies a new version once; a replay after the change equals the live
state; a deadline corrected into the past never publishes a breach."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.bootstrap import Service, SystemClock, http_app, intake_rules
from service.config import Settings
from service.domain.signals import Channel, Signal, SignalKind
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import (
    eventually,
    make_settings,
    publish,
    recovery_cli,
    relay_caught_up,
    signal_event,
    suite_keyring,
    wait_until_ready,
)

REGULATORY = "regulatory_final_response"
OFFICE_HOURS = {
    "version": "v2-office",
    "calendars": {
        "office": {
            "time_zone": "UTC",
            "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        }
    },
    "clocks": [
        {"clock": "resolution", "calendar": "office"},
        {"clock": REGULATORY, "when": {"kind": ["complaint"]}, "calendar": "24x7", "duration": "P56D"},
    ],
}


def policy_file(tmp_path: Path, document: dict[str, Any], name: str = "policy.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


async def open_cases(pool: asyncpg.Pool, customers: int) -> None:
    """Open cases through the intake's own transaction, under no policy file (every clock 24x7)."""
    now = datetime.now(UTC)
    kinds = (SignalKind.COMPLAINT, SignalKind.NPS)
    signals = [
        Signal(
            source="s",
            id=f"sig-{n}",
            kind=kinds[n % 2],
            occurred_at=now - timedelta(minutes=n),
            received_at=now,
            customer_id=f"cust-{n}",
            channel=Channel.EMAIL,
            score=1 if kinds[n % 2] is SignalKind.NPS else None,
            text="It broke again." if kinds[n % 2] is SignalKind.COMPLAINT else None,
        )
        for n in range(customers)
    ]
    rules = intake_rules(Settings())
    await apply_signals(signals, {}, "g", PostgresIntakeStore(pool, suite_keyring()), rules, VaderSentiment(), SystemClock())


async def fingerprint(conn: asyncpg.Connection) -> tuple[Any, ...]:
    """Everything a policy change could write: the log, the read model, the timers, the versions."""
    return (
        await conn.fetchval("SELECT count(*) FROM events"),
        await conn.fetchval(
            "SELECT md5(string_agg(case_id || version || state::text, ',' ORDER BY case_id)) FROM cases"
        ),
        await conn.fetchval(
            "SELECT md5(string_agg(case_id || sla || kind || due_at::text || coalesce(fired_at::text, ''), ','"
            " ORDER BY case_id, sla, kind)) FROM sla_timers"
        ),
        await conn.fetchval("SELECT count(*) FROM sla_policy_versions"),
    )


def moves(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(case, clock, old deadline, new deadline), the instants read from whichever ISO spelling."""
    return {(r["case_id"], r["clock"], _at(r["old_deadline"]), _at(r["new_deadline"])) for r in rows}


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def test_the_diff_is_what_apply_then_appends_and_a_replay_equals_the_live_state(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    await open_cases(pool, 40)
    path = policy_file(tmp_path, OFFICE_HOURS)
    async with pool.acquire() as conn:
        before = await fingerprint(conn)
        diff = recovery_cli(
            database_url, "policy", "diff", "--file", str(path), "--json", "--examples", "1000"
        )
        assert diff.returncode == 0, diff.stderr
        assert await fingerprint(conn) == before  # a preview writes nothing
        preview = json.loads(diff.stdout)
        assert (preview["from_version"], preview["to_version"]) == (None, "v2-office")
        assert (preview["open_cases"], preview["changed_cases"], preview["failed_cases"]) == (40, 40, [])
        assert preview["clocks"][REGULATORY]["added"] == 20  # the complaints
        assert preview["clocks"]["resolution"]["later"] == 40  # office hours only ever wait longer than 24x7
        text = recovery_cli(database_url, "policy", "diff", "--file", str(path))
        assert "40 open cases looked at, 40 would change" in text.stdout

        applied = recovery_cli(
            database_url, "policy", "apply", "--file", str(path), "--json", "--examples", "1000"
        )
        assert applied.returncode == 0, applied.stderr
        assert moves(json.loads(applied.stdout)["examples"]) == moves(preview["examples"])
        stored = await conn.fetch(
            "SELECT stream_id, data FROM events WHERE type = 'case.deadlines_corrected' ORDER BY stream_id"
        )
        appended = [
            {
                "case_id": r["stream_id"],
                "clock": c["name"],
                "old_deadline": c["before"] and c["before"]["deadline"],
                "new_deadline": c["after"] and c["after"]["deadline"],
            }
            for r in stored
            for c in json.loads(r["data"])["corrections"]
        ]
        assert len(stored) == 40
        assert moves(appended) == moves(preview["examples"])
        for row in appended:  # the timers moved with the deadlines
            due = await conn.fetchval(
                "SELECT due_at FROM sla_timers WHERE (case_id, sla, kind) = ($1, $2, 'breach')",
                row["case_id"],
                row["clock"],
            )
            assert due == datetime.fromisoformat(row["new_deadline"])

        again = recovery_cli(database_url, "policy", "apply", "--file", str(path))
        assert again.returncode == 0 and "applied already" in again.stdout
        assert (
            await conn.fetchval("SELECT count(*) FROM events WHERE type = 'case.deadlines_corrected'") == 40
        )
        assert [r["version"] for r in await conn.fetch("SELECT version FROM sla_policy_versions")] == [
            "v2-office"
        ]
        looked = recovery_cli(database_url, "policy", "apply", "--file", str(path), "--again")
        assert looked.returncode == 0 and "40 open cases looked at, 0 changed" in looked.stdout, looked.stdout
        assert (
            await conn.fetchval("SELECT count(*) FROM events WHERE type = 'case.deadlines_corrected'") == 40
        )

        checked = recovery_cli(database_url, "projections", "rebuild", "--check")
        assert checked.returncode == 0 and " 0 differ" in checked.stdout, checked.stdout + checked.stderr


async def test_apply_refuses_a_bad_file_and_waits_for_no_one_when_another_apply_runs(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    bad = policy_file(tmp_path, {**OFFICE_HOURS, "clocks": [{"clock": "resolution", "calendar": "nowhere"}]})
    refused = recovery_cli(database_url, "policy", "diff", "--file", str(bad))
    assert refused.returncode == 1 and "no calendar named 'nowhere'" in refused.stderr
    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1, $2)", 0x534C_4150, 0)
        busy = recovery_cli(
            database_url, "policy", "apply", "--file", str(policy_file(tmp_path, OFFICE_HOURS))
        )
        await holder.execute("SELECT pg_advisory_unlock($1, $2)", 0x534C_4150, 0)
    assert busy.returncode == 2 and "another" in busy.stderr
    assert await pool.fetchval("SELECT count(*) FROM sla_policy_versions") == 0


# Start-up applies a new version once; a breach it corrects into the past is never published.


def closed_until_the_day_after_tomorrow() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {
        "version": "v1-closed",
        "calendars": {
            "closed": {
                "time_zone": "UTC",
                "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                "holidays": {"dates": [str(today), str(today + timedelta(days=1))]},
            }
        },
        "clocks": [{"clock": "resolution", "calendar": "closed"}],
    }


async def run_once(settings: Settings) -> None:
    """Start the service, wait until it serves and has applied its policy version, stop it."""
    service = Service(settings)
    await service.start()
    try:
        await wait_until_ready(service)
        assert service.pool is not None
        pool = service.pool

        async def applied() -> bool:
            version = await pool.fetchval("SELECT version FROM sla_policy_versions ORDER BY id DESC LIMIT 1")
            return version == service.rules.sla.version

        await eventually(applied, what="the policy version applied")
    finally:
        await service.stop()


async def test_start_up_applies_a_new_version_once_and_a_breach_corrected_into_the_past_never_goes_out(
    kafka: Kafka, database_url: str, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    long = {c: "PT1H" for c in ("phone", "email", "chat", "social", "web", "in_person")}
    base = make_settings(
        kafka,
        database_url,
        sla_resolution={s: "PT2S" for s in ("minor", "moderate", "major", "critical")},
        sla_first_response=long,
        sla_policy_file=policy_file(tmp_path, closed_until_the_day_after_tomorrow(), "v1.json"),
    )
    v2 = replace_policy(base, policy_file(tmp_path, {"version": "v2-24x7"}, "v2.json"))
    service = Service(base)
    await service.start()
    conn = await asyncpg.connect(database_url)
    try:
        await wait_until_ready(service)
        opened_at = datetime.now(UTC)
        await publish(
            producer,
            base.topic_nps,
            "pc-1",
            signal_event(SignalKind.NPS, "pc-1", {"score": 1, "channel": "email"}, at=opened_at),
        )

        async def the_case() -> str | None:
            return await conn.fetchval("SELECT case_id FROM cases WHERE customer_id = 'pc-1'")  # type: ignore[no-any-return]

        case_id = await eventually(the_case, what="the case opened")
        deadline = await conn.fetchval("SELECT resolution_deadline FROM cases WHERE case_id = $1", case_id)
        assert deadline.date() == datetime.now(UTC).date() + timedelta(days=2)  # 2 s of open time, then

        async def v1_applied() -> bool:
            return await conn.fetchval("SELECT count(*) FROM sla_policy_versions") == 1  # type: ignore[no-any-return]

        await eventually(v1_applied, what="the first version recorded")
    finally:
        await service.stop()
    try:

        async def passed() -> bool:  # the deadline 24x7 would give (2 s) is behind us before the change
            return datetime.now(UTC) > opened_at + timedelta(seconds=3)

        await eventually(passed, what="the 24x7 deadline in the past")
        async with Topic(kafka, base.topic_sla) as sla, Topic(kafka, base.topic_case_events) as cases:
            await run_once(v2)
            await run_once(v2)  # the same version again: nothing more
            corrected = await conn.fetch("SELECT data FROM events WHERE type = 'case.deadlines_corrected'")
            assert len(corrected) == 1
            [row] = json.loads(corrected[0]["data"])["corrections"]
            assert (row["name"], json.loads(corrected[0]["data"])["to_version"]) == ("resolution", "v2-24x7")
            versions = [
                r["version"] for r in await conn.fetch("SELECT version FROM sla_policy_versions ORDER BY id")
            ]
            assert versions == ["v1-closed", "v2-24x7"]

            service = Service(v2)  # now the timers and the relay run on the corrected case
            await service.start()
            try:
                await wait_until_ready(service)

                async def timers_done() -> bool:
                    left = await conn.fetchval(
                        "SELECT count(*) FROM sla_timers WHERE case_id = $1 AND sla = 'resolution'"
                        " AND fired_at IS NULL",
                        case_id,
                    )
                    return left == 0

                await eventually(timers_done, what="the resolution timers claimed and decided")

                await eventually(lambda: relay_caught_up(conn), what="the relay at the head of the log")

                async def correction_published() -> bool:
                    records = await cases.poll()
                    return any(ce(r)["ce_type"] == "recovery.case.deadlines_corrected" for r in records)

                await eventually(correction_published, what="the correction on the case-events topic")
                await sla.poll()
            finally:
                await service.stop()
        fired = [json.loads(r.value) for r in sla.records if r.key == case_id.encode()]
        assert [f for f in fired if f["sla"] == "resolution"] == []
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1 AND type LIKE 'case.sla_%'", case_id
            )
            == 0
        )
    finally:
        await conn.close()


def replace_policy(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"sla_policy_file": path})


async def test_a_case_that_cannot_be_corrected_is_named_and_skipped_and_the_next_apply_tries_it_again(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    await open_cases(pool, 3)
    broken = await pool.fetchval("SELECT min(case_id) FROM cases")
    await pool.execute("UPDATE cases SET state = '{\"damaged\": true}' WHERE case_id = $1", broken)
    path = policy_file(tmp_path, OFFICE_HOURS)
    diff = recovery_cli(database_url, "policy", "diff", "--file", str(path), "--json")
    assert json.loads(diff.stdout)["failed_cases"] == [broken]  # stdout holds the one JSON document
    applied = recovery_cli(database_url, "policy", "apply", "--file", str(path), "--json")
    assert applied.returncode == 3
    assert (json.loads(applied.stdout)["changed_cases"], json.loads(applied.stdout)["failed_cases"]) == (
        2,
        [broken],
    )
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'case.deadlines_corrected'") == 2
    again = recovery_cli(
        database_url, "policy", "apply", "--file", str(path)
    )  # not applied in full: it tries
    assert again.returncode == 3 and "3 open cases looked at, 0 changed" in again.stdout


async def test_an_apply_that_leaves_a_case_uncorrected_is_a_metric_and_a_health_reason_until_a_retry_succeeds(
    kafka: Kafka, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    await open_cases(pool, 2)
    broken = await pool.fetchval("SELECT min(case_id) FROM cases")
    good_state = await pool.fetchval("SELECT state::text FROM cases WHERE case_id = $1", broken)
    await pool.execute("UPDATE cases SET state = '{\"damaged\": true}' WHERE case_id = $1", broken)
    settings = make_settings(
        kafka,
        database_url,
        consume=False,
        relay=False,
        sla_policy_file=policy_file(tmp_path, OFFICE_HOURS),
        sla_policy_retry_interval=timedelta(milliseconds=200),
    )
    service = Service(settings)
    await service.start()
    try:
        app = http_app(service, settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:

            async def health(degraded: bool) -> dict[str, Any] | None:
                answer = await client.get("/healthz")
                body: dict[str, Any] = answer.json()
                return body if answer.status_code == 200 and ("degraded" in body) == degraded else None

            unhealthy = await eventually(lambda: health(True), what="/healthz naming the policy not applied")
            assert unhealthy["degraded"] == [
                "sla-policy: version v2-office applied but 1 open cases could not be corrected"
            ]
            assert "recovery_sla_policy_unapplied 1.0" in (await client.get("/metrics")).text
            # the snapshot is readable again (a rebuild, an upcaster): the next try corrects the case
            await pool.execute("UPDATE cases SET state = $2::json WHERE case_id = $1", broken, good_state)
            assert await eventually(lambda: health(False), what="/healthz alive again") == {"status": "alive"}
            assert "recovery_sla_policy_unapplied 0.0" in (await client.get("/metrics")).text
        corrected = "SELECT count(*) FROM events WHERE type = 'case.deadlines_corrected' AND stream_id = $1"
        assert await pool.fetchval(corrected, broken) == 1
    finally:
        await service.stop()
