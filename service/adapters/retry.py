"""The one retry policy: which faults are transient, and how long to wait before trying again.

Every loop that waits on PostgreSQL or Kafka (the signal consumer, the billing-results consumer, the relay,
the SLA timers) waits here, with capped exponential backoff and jitter, so a restarted dependency is met by
a spread of retries rather than a thundering herd, and the wait ends by itself when the dependency is back.
A fault that is not transient is not retried here: the caller isolates the record that caused it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import structlog
from aiokafka.errors import KafkaError, KafkaTimeoutError

from service.adapters.postgres.errors import TRANSIENT as DATABASE_TRANSIENT
from service.domain.errors import ConcurrencyConflict

log = structlog.get_logger()
T = TypeVar("T")

# asyncpg raises InternalClientError ("cannot switch to state ...") on a connection whose server went away
# in the middle of an operation; the pool discards that connection, so a retry gets a fresh one.
_DATABASE: tuple[type[BaseException], ...] = (*DATABASE_TRANSIENT, asyncpg.InternalClientError)
# SQLSTATE classes of a server in trouble, not of one bad row: connection exception, insufficient resources
# (disk full, out of memory), operator intervention (shutdown, query cancelled), system error. A disk that
# fills up must make the consumer wait, never send every record to the dead-letter topic.
_SERVER_TROUBLE = frozenset({"08", "53", "57", "58"})
_TRANSIENT: tuple[type[BaseException], ...] = (
    *_DATABASE,
    ConcurrencyConflict,
    KafkaTimeoutError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """A fault of a dependency that goes away by itself: the database or the broker is briefly unreachable,
    or a race was lost (deciding again settles it)."""
    if isinstance(error, _TRANSIENT) or _server_in_trouble(error):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


def is_database_fault(error: BaseException) -> bool:
    """The database, not the broker or a lost race: readiness reports the database as down meanwhile."""
    return isinstance(error, _DATABASE) or _server_in_trouble(error)


def _server_in_trouble(error: BaseException) -> bool:
    return (
        isinstance(error, asyncpg.PostgresError)
        and str(getattr(error, "sqlstate", None) or "")[:2] in _SERVER_TROUBLE
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter between half and all of each step."""

    first_seconds: float = 0.2
    cap_seconds: float = 5.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        step = self.first_seconds
        while True:
            yield random.uniform(step / 2, step)
            step = min(step * self.factor, self.cap_seconds)


DEFAULT_POLICY = RetryPolicy()


async def retrying(
    work: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `work` until it succeeds; transient faults are waited out (at most `attempts` tries when given),
    any other error is raised at once."""
    delays = policy.delays()
    tried = 0
    while True:
        try:
            return await work()
        except Exception as e:
            tried += 1
            if not is_transient(e) or (attempts is not None and tried >= attempts):
                raise
            delay = next(delays)
            if on_retry is not None:
                on_retry(e)
            log.warning("retrying", what=what, error=type(e).__name__, delay=round(delay, 3))
            await asyncio.sleep(delay)


async def keep_running(
    what: str,
    turn: Callable[[], Awaitable[None]],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    on_retry: Callable[[BaseException], None] | None = None,
) -> None:
    """Run a background loop's turn forever: a transient fault starts a new turn after a backoff (reset once a
    turn has run for a minute); any other error ends the loop, and the process reports itself unhealthy."""
    loop = asyncio.get_running_loop()
    delays = policy.delays()
    while True:
        started = loop.time()
        try:
            await turn()
            continue
        except Exception as e:
            if not is_transient(e):
                log.error("loop_failed", what=what, error=type(e).__name__)
                raise
            if on_retry is not None:
                on_retry(e)
            if loop.time() - started > 60:
                delays = policy.delays()
            delay = next(delays)
            log.warning("loop_interrupted", what=what, error=type(e).__name__, delay=round(delay, 3))
        await asyncio.sleep(delay)
