"""The one retry policy: what counts as transient, and the backoff."""

from __future__ import annotations

import itertools

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from service.adapters.retry import RetryPolicy, is_database_fault, is_transient, retrying
from service.domain.errors import ConcurrencyConflict


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        asyncpg.CannotConnectNowError(),
        asyncpg.InternalClientError("cannot switch to state 15; another operation is in progress"),
        asyncpg.DiskFullError(),  # SQLSTATE 53100: the server is in trouble, not the record
        asyncpg.AdminShutdownError(),
        ConcurrencyConflict("UniqueViolationError"),
        KafkaConnectionError(),
        KafkaTimeoutError(),
        TimeoutError(),
    ],
)
def test_faults_of_a_dependency_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError(),
        asyncpg.CharacterNotInRepertoireError(),  # a NUL in a text value: the record's fault
        asyncpg.ProgramLimitExceededError(),  # an index row too large: the record's fault
        MessageSizeTooLargeError(),
        OverflowError(),
        ValueError(),
    ],
)
def test_faults_of_one_record_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_the_database_being_away_is_a_database_fault_and_a_lost_race_is_not() -> None:
    assert is_database_fault(OSError())
    assert is_database_fault(asyncpg.DiskFullError())
    assert not is_database_fault(ConcurrencyConflict("x"))
    assert not is_database_fault(KafkaConnectionError())


def test_backoff_grows_to_its_cap_with_jitter_below_each_step() -> None:
    policy = RetryPolicy(first_seconds=0.2, cap_seconds=5.0)
    delays = list(itertools.islice(policy.delays(), 12))
    steps = [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    assert len(set(delays)) > 1


async def test_retrying_waits_out_transient_faults_and_raises_others_at_once() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError()
        return "done"

    fast = RetryPolicy(first_seconds=0.001, cap_seconds=0.002)
    assert await retrying(flaky, "flaky", policy=fast) == "done"
    assert len(calls) == 3

    async def broken() -> None:
        calls.append(1)
        raise OverflowError()

    calls.clear()
    with pytest.raises(OverflowError):
        await retrying(broken, "broken", policy=fast)
    assert len(calls) == 1

    async def away() -> None:
        raise ConnectionRefusedError()

    with pytest.raises(ConnectionRefusedError):
        await retrying(away, "away", policy=fast, attempts=4)
