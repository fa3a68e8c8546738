"""The intake transaction against the real PostgreSQL: races, redelivery, and offsets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg

from service.adapters.http.models import CaseView
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.intake_store import PostgresIntakeStore, PostgresIntakeTransaction
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.app.ports import PartitionKey
from service.bootstrap import SystemClock, intake_rules
from service.config import Settings
from service.domain.intake import IntakePlan, Outcome
from service.domain.severity import load_default_policy
from service.domain.signals import Signal, SignalKind
from tests.support import case_id_of, suite_keyring

NOW = datetime.now(UTC)


def nps(signal_id: str, customer: str, score: int = 2) -> Signal:
    return Signal(
        source="s",
        id=signal_id,
        kind=SignalKind.NPS,
        occurred_at=NOW,
        received_at=NOW,
        customer_id=customer,
        score=score,
    )


class HeldStore(PostgresIntakeStore):
    """Holds the first transaction after it decided, until the test lets it record."""

    def __init__(self, pool: asyncpg.Pool, decided: asyncio.Event, proceed: asyncio.Event) -> None:
        super().__init__(pool, suite_keyring())
        self.decided, self.proceed, self.held = decided, proceed, False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresIntakeTransaction]:
        async with super().transaction() as tx:
            if not self.held:
                self.held = True
                original = tx.record

                async def record(plan: IntakePlan, group: str, offsets: Mapping[PartitionKey, int]) -> None:
                    self.decided.set()
                    await self.proceed.wait()
                    await original(plan, group, offsets)

                tx.record = record  # type: ignore[method-assign]
            yield tx


async def apply(store: PostgresIntakeStore, *signals: Signal, offsets: dict[PartitionKey, int] | None = None):  # type: ignore[no-untyped-def]
    rules = intake_rules(Settings())
    return await apply_signals(
        list(signals), offsets or {}, "g", store, rules, VaderSentiment(), SystemClock()
    )


async def test_a_lost_race_is_decided_again_and_attaches_instead_of_opening_a_second_case(
    pool: asyncpg.Pool,
) -> None:
    decided, proceed = asyncio.Event(), asyncio.Event()
    slow = asyncio.create_task(apply(HeldStore(pool, decided, proceed), nps("complaint-1", "c-race")))
    await decided.wait()  # the slow instance saw no case and decided to open one
    fast = await apply(PostgresIntakeStore(pool, suite_keyring()), nps("nps-1", "c-race"))
    proceed.set()
    slow_result = await slow
    assert [a.outcome for a in fast.applied] == [Outcome.OPENED]
    assert slow_result.conflicts == 1
    assert [a.outcome for a in slow_result.applied] == [Outcome.ATTACHED]
    assert await pool.fetchval("SELECT count(*) FROM cases WHERE customer_id = 'c-race'") == 1


async def test_a_redelivered_batch_changes_nothing_and_counts_duplicates(pool: asyncpg.Pool) -> None:
    store = PostgresIntakeStore(pool, suite_keyring())
    batch = [nps("a", "c-1"), nps("b", "c-1"), nps("a", "c-1")]
    first = await apply(store, *batch)
    before = await pool.fetchval("SELECT count(*) FROM events")
    again = await apply(store, *batch)
    assert len(first.applied) == 2 and len(first.duplicates) == 1
    assert again.applied == [] and len(again.duplicates) == 3
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_offsets_move_with_the_batch_and_never_backwards(pool: asyncpg.Pool) -> None:
    store = PostgresIntakeStore(pool, suite_keyring())
    await apply(store, nps("x", "c-2"), offsets={("t", 0): 10, ("t", 1): 4})
    await apply(store, nps("y", "c-2"), offsets={("t", 0): 7})  # a late, stale writer
    assert await store.next_offsets("g", [("t", 0), ("t", 1), ("t", 2)]) == {("t", 0): 10, ("t", 1): 4}


async def test_a_cases_signals_read_with_their_cloudevents_type_clock_rule_and_policy_version(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresIntakeStore(pool, suite_keyring())
    year_old = replace(nps("old-1", "c-read"), occurred_at=NOW - timedelta(days=365))
    await apply(store, year_old, nps("fine-1", "c-read", score=9))
    found = await PostgresCaseReads(pool, suite_keyring()).get_case(await case_id_of(pool, "c-read"))
    assert found is not None
    case, _ = found
    [signal] = case.signals
    assert (signal.type, signal.reasons) == ("recovery.signal.nps", ["nps:0-3", "clock:too_old"])
    assert signal.occurred_at == year_old.occurred_at  # the signal keeps its own time
    assert case.state.opened_at == NOW  # its clocks started at arrival
    version = load_default_policy().version
    assert signal.policy_version == version
    [shown] = CaseView.of(case).model_dump(mode="json")["signals"]
    assert (shown["type"], shown["policy_version"]) == ("recovery.signal.nps", version)
    logged = await pool.fetch(
        "SELECT signal_id, policy_version FROM signal_log WHERE customer_id = 'c-read' ORDER BY signal_id"
    )
    assert [tuple(r) for r in logged] == [("fine-1", version), ("old-1", version)]  # not-a-failure too


async def test_a_snapshot_another_writer_changed_is_read_as_stored_not_as_this_process_remembers_it(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresIntakeStore(pool, suite_keyring())  # remembers the snapshot it writes
    await apply(store, nps("r-1", "c-remember"))
    case_id = await case_id_of(pool, "c-remember")
    stored = json.loads(await pool.fetchval("SELECT state FROM cases WHERE case_id = $1", case_id))
    stored["owner"] = "ana"  # another instance assigned the case meanwhile
    await pool.execute("UPDATE cases SET state = $2 WHERE case_id = $1", case_id, json.dumps(stored))
    await apply(store, nps("r-2", "c-remember"))
    state = json.loads(await pool.fetchval("SELECT state FROM cases WHERE case_id = $1", case_id))
    assert (state["owner"], state["signal_count"]) == ("ana", 2)
