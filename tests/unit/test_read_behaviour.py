"""The in-memory reads answer as tests/read_behaviour.py says (PostgreSQL: tests/integration)."""

from __future__ import annotations

import pytest

from tests.fake_service import FakeCaseReads
from tests.fakes import FakeCommandStore
from tests.read_behaviour import BEHAVIOURS, Behaviour


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_the_fake_reads(behaviour: Behaviour) -> None:
    store = FakeCommandStore()
    await behaviour(store, FakeCaseReads(store))
