"""The one conflict retry of the use cases: a transaction that lost an optimistic-concurrency race to another
writer (ConcurrencyConflict) is decided again on what that writer committed, a bounded number of times."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.domain.errors import ConcurrencyConflict

T = TypeVar("T")

MAX_CONFLICT_RETRIES = 20
"""Races lost in a row before the conflict is raised: each loss means another writer made progress."""


async def decided_again_on_conflict(attempt: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """The attempt's result and how many races it lost first; ConcurrencyConflict after the bound."""
    for lost in range(MAX_CONFLICT_RETRIES):
        try:
            return await attempt(), lost
        except ConcurrencyConflict:
            if lost == MAX_CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")
