"""The in-memory stores behave as tests/store_behaviour says (PostgreSQL: tests/integration)."""

from __future__ import annotations

import pytest

from tests.fakes import (
    FakeCommandStore,
    FakeDatabase,
    FakeIncidentStore,
    FakeIntakeStore,
    FakeTimerStore,
    FakeTrendStore,
)
from tests.store_behaviour import BEHAVIOURS, Behaviour, Stores


def fake_stores() -> Stores:
    database = FakeDatabase()
    return Stores(
        FakeCommandStore(database),
        FakeIntakeStore(database),
        FakeTimerStore(database),
        FakeTrendStore(database),
        database.damage,
        database.repair,
        FakeIncidentStore(database),
    )


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_the_fake_stores(behaviour: Behaviour) -> None:
    await behaviour(fake_stores())
