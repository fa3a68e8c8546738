"""What every store does, fake or PostgreSQL: tests/unit/test_store_behaviour.py runs these on the in-memory
fakes (tests/fakes.py), tests/integration/test_store_behaviour.py on PostgreSQL, so the fast tier's use-case
tests stand on the same behaviour as the service. A behaviour is given every store of one fresh database."""

from __future__ import annotations

from tests.store_behaviour import commands, incidents, intake, timers, trends
from tests.store_behaviour.stores import Behaviour, Stores

BEHAVIOURS: list[Behaviour] = [
    *commands.BEHAVIOURS,
    *intake.BEHAVIOURS,
    *incidents.BEHAVIOURS,
    *timers.BEHAVIOURS,
    *trends.BEHAVIOURS,
]

__all__ = ["BEHAVIOURS", "Behaviour", "Stores"]
