"""The in-memory command store behaves as tests/store_behaviour.py says (PostgreSQL: tests/integration)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeCommandStore
from tests.store_behaviour import BEHAVIOURS, Behaviour


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_the_fake_command_store(behaviour: Behaviour) -> None:
    await behaviour(FakeCommandStore())
