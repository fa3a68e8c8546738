"""In-memory fakes of the use cases' ports, for the fast tier.

Each fake keeps the behaviour its PostgreSQL adapter promises, and tests/store_behaviour.py holds both to it
(tests/unit runs it on the fakes, tests/integration on PostgreSQL): a transaction applies all or nothing, an
append on a version already taken is a ConcurrencyConflict, an Idempotency-Key is remembered once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.app.commands import Remembered
from service.app.erasure import Erasure
from service.app.reads import CaseSignal
from service.domain.case import CaseState, CaseStatus, evolve
from service.domain.compensation import CompensationHistory
from service.domain.errors import ConcurrencyConflict
from service.domain.events import CaseEvent, CompensationRequested
from service.domain.intake import NewEvent
from service.domain.timers import Timer

AnswerKey = tuple[str, str, str]  # (actor, target, key)


@dataclass
class Held:
    """What the fake command store holds: the PostgreSQL tables, as dicts."""

    cases: dict[str, CaseState] = field(default_factory=dict)
    events: dict[str, list[CaseEvent]] = field(default_factory=dict)  # per stream, version order
    recorded_at: dict[str, list[datetime]] = field(default_factory=dict)
    answers: dict[AnswerKey, tuple[str, Remembered]] = field(default_factory=dict)
    timers: dict[str, list[Timer]] = field(default_factory=dict)
    trends: dict[str, tuple[bool, int, datetime | None]] = field(
        default_factory=dict
    )  # active, crossings, due
    positions: dict[str, list[int]] = field(default_factory=dict)  # each event's place in the whole log
    last_position: int = 0
    signals: dict[str, list[CaseSignal]] = field(default_factory=dict)  # the signal log, per case
    erased: dict[str, Erasure] = field(default_factory=dict)  # erased_customers, by customer id

    def next_position(self) -> int:
        self.last_position += 1
        return self.last_position


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


class FakeCommandTransaction:
    def __init__(self, held: Held, clock: FakeClock) -> None:
        self._held = held
        self._clock = clock
        self.changed: list[tuple[CaseState | None, CaseState]] = []

    async def prior_answer(self, actor: str, target: str, key: str) -> tuple[str, Remembered] | None:
        return self._held.answers.get((actor, target, key))

    async def case(self, case_id: str) -> CaseState | None:
        return self._held.cases.get(case_id)

    async def case_at(self, case_id: str, version: int | None) -> CaseState | None:
        if version is None:
            return await self.case(case_id)
        state = None
        for event in self._held.events.get(case_id, [])[:version]:
            state = evolve(state, event)
        return state

    async def latest_case(self, customer_id: str) -> CaseState | None:
        mine = [c for c in self._held.cases.values() if c.customer_id == customer_id]
        return max(mine, key=lambda c: c.ordinal, default=None)

    async def now(self) -> datetime:
        return self._clock.now()

    async def signals(self, case_id: str) -> list[Any]:
        return list(self._held.signals.get(case_id, []))

    async def compensation_history(
        self, case: CaseState, actor: str, actor_since: datetime
    ) -> CompensationHistory:
        others = [c for c in self._held.cases.values() if c.case_id != case.case_id]
        requested_on = {
            stream
            for stream, events in self._held.events.items()
            for e, at in zip(events, self._held.recorded_at[stream], strict=True)
            if isinstance(e, CompensationRequested) and e.actor == actor and at >= actor_since
        }
        return CompensationHistory(
            customer=tuple(c for o in others if o.customer_id == case.customer_id for c in o.compensations),
            actor=tuple(
                c
                for o in others
                if o.case_id in requested_on
                for c in o.compensations
                if c.requested_by == actor
            ),
        )

    async def record(
        self, events: Sequence[NewEvent], case: CaseState, timers: Mapping[str, Sequence[Timer]]
    ) -> None:
        self._append(events)
        before = self._held.cases.get(case.case_id)
        self._held.cases[case.case_id] = case
        for case_id, armed in timers.items():
            self._held.timers[case_id] = list(armed)
        self.changed.append((before, case))

    def _append(self, events: Sequence[NewEvent]) -> None:
        for e in events:
            stream = self._held.events.setdefault(e.stream_id, [])
            if e.version != len(stream) + 1:  # the unique (stream, version) of the events table
                raise ConcurrencyConflict("UniqueViolationError")
            stream.append(e.event)
            self._held.recorded_at.setdefault(e.stream_id, []).append(self._clock.now())
            self._held.positions.setdefault(e.stream_id, []).append(self._held.next_position())

    async def remember(self, actor: str, target: str, key: str, command: str, result: Remembered) -> None:
        if (actor, target, key) in self._held.answers:
            raise ConcurrencyConflict("UniqueViolationError")
        self._held.answers[(actor, target, key)] = (command, result)

    async def resolved_with(self, root_cause: str, since: datetime) -> Mapping[str, datetime]:
        return {
            c.case_id: c.resolved_at
            for c in self._held.cases.values()
            if c.resolution is not None
            and c.resolution.root_cause == root_cause
            and c.resolved_at is not None
            and c.resolved_at >= since
            and c.status is not CaseStatus.OPEN
        }

    async def trend(self, tag: str) -> tuple[bool, int]:
        active, crossings, _ = self._held.trends.get(tag, (False, 0, None))
        return active, crossings

    async def record_trend(
        self, tag: str, event: NewEvent | None, active: bool, due_at: datetime | None
    ) -> None:
        _, crossings, _ = self._held.trends.get(tag, (False, 0, None))
        if event is not None:
            self._append([event])
        self._held.trends[tag] = (active, crossings + (1 if event else 0), due_at)


class FakeCommandStore:
    """PostgresCommandStore's behaviour in memory. Transactions run one at a time (as if serializable), each on
    a copy of what is held, kept only if the transaction ends without an error."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.held = Held()
        self.clock = clock or FakeClock()
        self._one_at_a_time = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeCommandTransaction]:
        async with self.working() as held:
            yield FakeCommandTransaction(held, self.clock)

    async def case_for_request(self, request_id: str) -> str | None:
        """The case whose compensation billing's request id names (the CompensationLookup port)."""
        return next(
            (c.case_id for c in self.held.cases.values() for comp in c.compensations if comp.request_id == request_id),
            None,
        )

    @asynccontextmanager
    async def working(self) -> AsyncIterator[Held]:
        """A copy of what is held, to change; kept when the block ends without an error."""
        async with self._one_at_a_time:
            working = copy.deepcopy(self.held)
            yield working
            self.held = working
