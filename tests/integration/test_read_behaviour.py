"""PostgresCaseReads answers as tests/read_behaviour.py says (the fake: tests/unit)."""

from __future__ import annotations

import asyncpg
import pytest

from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.command_store import PostgresCommandStore
from tests.read_behaviour import BEHAVIOURS, Behaviour
from tests.support import suite_keyring


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_the_postgres_reads(behaviour: Behaviour, pool: asyncpg.Pool) -> None:
    await behaviour(PostgresCommandStore(pool, suite_keyring()), PostgresCaseReads(pool, suite_keyring()))
