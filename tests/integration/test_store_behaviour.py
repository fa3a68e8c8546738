"""The PostgreSQL stores behave as tests/store_behaviour says (the fakes: tests/unit)."""

from __future__ import annotations

import asyncpg
import pytest

from service.adapters.postgres.command_store import PostgresCommandStore
from service.adapters.postgres.incident_store import PostgresIncidentStore
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.timer_store import PostgresTimerStore
from service.adapters.postgres.trend_store import PostgresTrendStore
from tests.store_behaviour import BEHAVIOURS, Behaviour, Stores
from tests.support import suite_keyring


class DamagedSnapshots:
    """A case's stored snapshot replaced by JSON that is no case (as a bad write leaves it), and put back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._kept: dict[str, str] = {}

    async def damage(self, case_id: str) -> None:
        self._kept[case_id] = await self._pool.fetchval(
            "SELECT state::text FROM cases WHERE case_id = $1", case_id
        )
        await self._pool.execute('UPDATE cases SET state = \'{"no": "case"}\' WHERE case_id = $1', case_id)

    async def repair(self, case_id: str) -> None:
        await self._pool.execute(
            "UPDATE cases SET state = $2::json WHERE case_id = $1", case_id, self._kept[case_id]
        )


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_the_postgres_stores(behaviour: Behaviour, pool: asyncpg.Pool) -> None:
    keyring, snapshots = suite_keyring(), DamagedSnapshots(pool)
    await behaviour(
        Stores(
            PostgresCommandStore(pool, keyring),
            PostgresIntakeStore(pool, keyring),
            PostgresTimerStore(pool),
            PostgresTrendStore(pool),
            snapshots.damage,
            snapshots.repair,
            PostgresIncidentStore(pool, keyring),
        )
    )
