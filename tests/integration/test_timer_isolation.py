"""One unreadable timer row or case snapshot is set aside; every other due timer still fires; the timers of a
snapshot that reads again (repaired) are armed again and fire once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY

from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.timer_store import PostgresTimerStore
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.app.timers import fire_due_timers, rearm_set_aside
from service.bootstrap import SystemClock, intake_rules
from service.config import Settings
from service.domain.signals import Channel, Signal, SignalKind
from tests.support import suite_keyring


def isolated() -> float:
    return REGISTRY.get_sample_value("recovery_isolated_records_total", {"stage": "timer"}) or 0.0


async def test_an_unreadable_timer_and_an_unreadable_snapshot_are_set_aside_and_the_rest_fire(
    pool: asyncpg.Pool, database_url: str
) -> None:
    settings = Settings(database_url=database_url, sla_first_response={"chat": "PT1S"})
    rules = intake_rules(settings)
    now = datetime.now(UTC)
    signals = [
        Signal(
            source="iso",
            id=f"s-{n}",
            kind=SignalKind.NPS,
            occurred_at=now - timedelta(seconds=10),
            received_at=now,
            customer_id=f"cust-iso-{n}",
            channel=Channel.CHAT,
            score=1,
        )
        for n in range(2)
    ]
    await apply_signals(signals, {}, "iso", PostgresIntakeStore(pool, suite_keyring()), rules, VaderSentiment(), SystemClock())
    good, broken = sorted(await pool.fetch("SELECT case_id FROM cases ORDER BY case_id"), key=str)
    snapshot = await pool.fetchval("SELECT state::text FROM cases WHERE case_id = $1", broken["case_id"])
    await pool.execute('UPDATE cases SET state = \'{"no": "case"}\' WHERE case_id = $1', broken["case_id"])
    await pool.execute(
        "INSERT INTO sla_timers (case_id, sla, kind, deadline, due_at) VALUES ($1, 'Bogus!', 'breach', $2, $2)",
        good["case_id"],
        now - timedelta(seconds=5),
    )
    before = isolated()

    fired = await fire_due_timers(PostgresTimerStore(pool), rules.sla, 100)

    events = {f.event.case_id for f in fired if f.event is not None}
    assert events == {good["case_id"]}  # the good case's first-response warning and breach fired
    assert isolated() - before == 2  # the bogus row and the unreadable snapshot, each counted
    unfired = await pool.fetchval(
        "SELECT count(*) FROM sla_timers WHERE fired_at IS NULL AND due_at <= now()"
    )
    assert unfired == 0  # nothing is left to fail again on the next poll
    assert await fire_due_timers(PostgresTimerStore(pool), rules.sla, 100) == []
    aside = "SELECT count(*) FROM sla_timers WHERE case_id = $1 AND set_aside_at IS NOT NULL"
    assert await pool.fetchval(aside, broken["case_id"]) == 2  # its warning and breach, kept, not fired

    store = PostgresTimerStore(pool)
    assert await rearm_set_aside(store, after=timedelta(0)) == []  # still unreadable: still set aside
    await pool.execute("UPDATE cases SET state = $2::json WHERE case_id = $1", broken["case_id"], snapshot)
    assert await rearm_set_aside(store, after=timedelta(0)) == [broken["case_id"]]  # repaired: armed again
    again = await fire_due_timers(store, rules.sla, 100)
    assert sorted(f.event.type for f in again if f.event is not None) == ["case.sla_breached", "case.sla_warning"]
    assert {f.timer.case_id for f in again} == {broken["case_id"]}
    assert await pool.fetchval(aside, broken["case_id"]) == 0
    assert await fire_due_timers(store, rules.sla, 100) == []  # fired once, never twice
