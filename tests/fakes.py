"""In-memory fakes of the use cases' store ports, for the fast tier.

All of them work on one FakeDatabase, so a case the intake opened is the command store's to change and its
timers are the timer store's to fire. Each fake keeps the behaviour its PostgreSQL adapter promises, and
tests/store_behaviour holds both to it (tests/unit runs it on the fakes, tests/integration on PostgreSQL): a
transaction applies all or nothing; a version already taken, a signal already logged, a second open case or
ordinal for a customer, an Idempotency-Key remembered twice are each a ConcurrencyConflict.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.adapters.kafka.wire import TYPE_BY_KIND
from service.app.commands import Remembered
from service.app.erasure import Erasure
from service.app.ports import PartitionKey, SignalKey
from service.app.reads import CaseSignal
from service.domain.case import CaseState, CaseStatus, evolve
from service.domain.compensation import CompensationHistory
from service.domain.errors import ConcurrencyConflict
from service.domain.events import CaseEvent, CompensationRequested
from service.domain.incidents import (
    OPEN_STATUSES,
    IncidentEvent,
    IncidentOpened,
    IncidentState,
    OpenIncident,
    Scope,
    Sighting,
    SurgeCount,
    SurgeRule,
    count_surge,
    evolve_incident,
    incident_stream,
    scope_key,
    scope_of,
)
from service.domain.intake import Applied, IntakePlan, NewEvent
from service.domain.timers import Timer, TimerKind
from service.domain.trends import TrendDetected

AnswerKey = tuple[str, str, str]  # (actor, target, key)
TimerKey = tuple[str, str, TimerKind]  # (case_id, sla, kind)
REARM_BATCH = 100  # as the PostgreSQL timer store's


@dataclass
class ArmedTimer:
    """A row of sla_timers: fired (or set aside, its case unreadable) at most once per deadline."""

    timer: Timer
    fired_at: datetime | None = None
    set_aside_at: datetime | None = None


@dataclass
class HeldTrend:
    """A row of rootcause_trends."""

    active: bool = False
    crossings: int = 0
    due_at: datetime | None = None


@dataclass
class Held:
    """What the fake database holds: the PostgreSQL tables as dicts, and their unique keys as checks."""

    cases: dict[str, CaseState] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # cases whose stored snapshot no longer parses
    events: dict[str, list[CaseEvent | TrendDetected]] = field(default_factory=dict)  # per stream, in order
    recorded_at: dict[str, list[datetime]] = field(default_factory=dict)
    positions: dict[str, list[int]] = field(default_factory=dict)  # each event's place in the whole log
    last_position: int = 0
    answers: dict[AnswerKey, tuple[str, Remembered]] = field(default_factory=dict)
    signals: dict[SignalKey, Applied] = field(default_factory=dict)  # the signal log
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (group, topic, partition)
    timers: dict[TimerKey, ArmedTimer] = field(default_factory=dict)
    trends: dict[str, HeldTrend] = field(default_factory=dict)
    erased: dict[str, Erasure] = field(default_factory=dict)  # erased_customers, by customer id
    incidents: dict[str, tuple[str, IncidentState]] = field(default_factory=dict)  # id -> (scope key, state)

    def snapshot(self, case_id: str) -> CaseState | None:
        """The case as its snapshot reads; a damaged one raises, as PostgreSQL's does when parsed."""
        if case_id in self.unreadable:
            raise ValueError(f"the snapshot of case {case_id} does not parse")
        return self.cases.get(case_id)

    def case_signals(self, case_id: str) -> list[CaseSignal]:
        """The failures the signal log holds for the case, in their order, as a case read shows them."""
        logged = [a for a in self.signals.values() if a.case_id == case_id and a.classification.severity]
        logged.sort(key=lambda a: (a.signal.occurred_at, a.signal.received_at, a.signal.source, a.signal.id))
        return [
            CaseSignal(
                a.signal.source,
                a.signal.id,
                TYPE_BY_KIND[a.signal.kind],
                str(a.classification.severity),
                list(a.classification.reasons),
                a.classification.policy_version,
                str(a.classification.category),
                a.signal.occurred_at,
                a.signal.received_at,
                a.signal.text,
            )
            for a in logged
        ]

    def latest(self, customer_id: str) -> CaseState | None:
        mine = [c for c in self.cases.values() if c.customer_id == customer_id]
        latest = max(mine, key=lambda c: c.ordinal, default=None)
        return None if latest is None else self.snapshot(latest.case_id)

    def save_timers(self, timers: Mapping[str, Sequence[Timer]]) -> None:
        """Replace these cases' timers; one whose deadline moved is armed again (its set-aside mark stays)."""
        for case_id, armed in timers.items():
            kept = {(t.case_id, t.sla, t.kind): t for t in armed}
            for key in [k for k in self.timers if k[0] == case_id and k not in kept]:
                del self.timers[key]
            for key, timer in kept.items():
                old = self.timers.get(key)
                if old is None:
                    self.timers[key] = ArmedTimer(timer)
                else:
                    fired = old.fired_at if old.timer.deadline == timer.deadline else None
                    self.timers[key] = ArmedTimer(timer, fired, old.set_aside_at)

    def save_cases(self, cases: Iterable[CaseState]) -> None:
        """Upsert the cases (each snapshot reads again): a customer has one case per ordinal, one open."""
        cases = list(cases)
        for case in cases:
            self.cases[case.case_id] = case
            self.unreadable.discard(case.case_id)
        for customer in {c.customer_id for c in cases}:
            mine = [c for c in self.cases.values() if c.customer_id == customer]
            open_ = [c for c in mine if c.status is CaseStatus.OPEN]
            if len({c.ordinal for c in mine}) < len(mine) or len(open_) > 1:
                raise ConcurrencyConflict("UniqueViolationError")

    def append(self, events: Sequence[NewEvent], now: datetime) -> None:
        for e in events:
            stream = self.events.setdefault(e.stream_id, [])
            if e.version != len(stream) + 1:  # the unique (stream, version) of the events table
                raise ConcurrencyConflict("UniqueViolationError")
            stream.append(e.event)
            self.recorded_at.setdefault(e.stream_id, []).append(now)
            self.positions.setdefault(e.stream_id, []).append(self.next_position())

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


class FakeDatabase:
    """One database for all the fakes. Transactions run one at a time (as if serializable), each on a copy of
    what is held, kept only if the transaction ends without an error. Its clock is the database's now()."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.held = Held()
        self.clock = clock or FakeClock()
        self._one_at_a_time = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Held]:
        async with self._one_at_a_time:
            working = copy.deepcopy(self.held)
            yield working
            self.held = working

    async def damage(self, case_id: str) -> None:
        """The case's snapshot no longer parses (a bug's write, a missing upcaster) until it is repaired."""
        self.held.unreadable.add(case_id)

    async def repair(self, case_id: str) -> None:
        self.held.unreadable.discard(case_id)


class FakeTrendRecords:
    """A tag's trend state and its resolved cases: what a command's and the review loop's share."""

    def __init__(self, held: Held, clock: FakeClock) -> None:
        self._held = held
        self._clock = clock

    async def now(self) -> datetime:
        return self._clock.now()

    async def resolved_with(self, root_cause: str, since: datetime) -> Mapping[str, datetime]:
        return {  # the cases table's root_cause and resolved_at columns: readable whatever the snapshot
            c.case_id: c.resolution.resolved_at
            for c in self._held.cases.values()
            if c.resolution is not None
            and c.resolution.root_cause == root_cause
            and c.resolution.resolved_at >= since
            and c.status is not CaseStatus.OPEN
        }

    async def trend(self, tag: str) -> tuple[bool, int]:
        trend = self._held.trends.get(tag, HeldTrend())
        return trend.active, trend.crossings

    async def record_trend(
        self, tag: str, event: NewEvent | None, active: bool, due_at: datetime | None
    ) -> None:
        crossings = self._held.trends.get(tag, HeldTrend()).crossings + (1 if event else 0)
        self._held.trends[tag] = HeldTrend(active, crossings, due_at)
        if event is not None:
            self._held.append([event], self._clock.now())


class FakeCommandTransaction(FakeTrendRecords):
    def __init__(self, held: Held, clock: FakeClock) -> None:
        super().__init__(held, clock)
        self.changed: list[tuple[CaseState | None, CaseState]] = []

    async def prior_answer(self, actor: str, target: str, key: str) -> tuple[str, Remembered] | None:
        return self._held.answers.get((actor, target, key))

    async def case(self, case_id: str) -> CaseState | None:
        return self._held.snapshot(case_id)

    async def case_at(self, case_id: str, version: int | None) -> CaseState | None:
        if version is None:
            return await self.case(case_id)
        state = None
        for event in self._held.events.get(case_id, [])[:version]:
            state = evolve(state, event)  # type: ignore[arg-type]  # a case's stream holds case events
        return state

    async def latest_case(self, customer_id: str) -> CaseState | None:
        return self._held.latest(customer_id)

    async def signals(self, case_id: str) -> list[Any]:
        return self._held.case_signals(case_id)

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
        before = self._held.cases.get(case.case_id)
        self._held.save_timers(timers)
        self._held.save_cases([case])
        self._held.append(events, self._clock.now())
        self.changed.append((before, case))

    async def remember(self, actor: str, target: str, key: str, command: str, result: Remembered) -> None:
        if (actor, target, key) in self._held.answers:
            raise ConcurrencyConflict("UniqueViolationError")
        self._held.answers[(actor, target, key)] = (command, result)


class FakeCommandStore:
    """PostgresCommandStore's behaviour in memory."""

    def __init__(self, database: FakeDatabase | None = None) -> None:
        self.database = database or FakeDatabase()

    @property
    def held(self) -> Held:
        return self.database.held

    @property
    def clock(self) -> FakeClock:
        return self.database.clock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeCommandTransaction]:
        async with self.database.transaction() as held:
            yield FakeCommandTransaction(held, self.database.clock)

    async def case_for_request(self, request_id: str) -> str | None:
        """The case whose compensation billing's request id names (the CompensationLookup port)."""
        return next(
            (
                c.case_id
                for c in self.held.cases.values()
                for comp in c.compensations
                if comp.request_id == request_id
            ),
            None,
        )


class FakeIntakeTransaction:
    def __init__(self, held: Held, clock: FakeClock) -> None:
        self._held = held
        self._clock = clock

    async def seen(self, keys: Sequence[SignalKey]) -> set[SignalKey]:
        return {k for k in keys if k in self._held.signals}

    async def latest_cases(self, customer_ids: Sequence[str]) -> dict[str, CaseState]:
        latest = {c: self._held.latest(c) for c in customer_ids}
        return {c: case for c, case in latest.items() if case is not None}

    async def recent_failures(
        self, customer_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        failures: dict[str, list[datetime]] = {}
        for a in self._held.signals.values():
            s = a.signal
            if (
                s.customer_id in customer_ids
                and a.classification.severity is not None
                and s.occurred_at >= since
            ):
                failures.setdefault(s.customer_id, []).append(s.occurred_at)
        return failures

    async def record(self, plan: IntakePlan, group: str, next_offsets: Mapping[PartitionKey, int]) -> None:
        for a in plan.applied:
            if a.signal.key in self._held.signals:  # the signal log's primary key
                raise ConcurrencyConflict("UniqueViolationError")
            self._held.signals[a.signal.key] = a
        self._held.save_timers(plan.timers)
        self._held.save_cases(plan.cases.values())
        for (topic, partition), offset in next_offsets.items():  # never backwards
            key = (group, topic, partition)
            self._held.offsets[key] = max(offset, self._held.offsets.get(key, offset))
        self._held.append(plan.events, self._clock.now())
        for tag in plan.root_causes:  # a reopen asks the review loop to recount a tag that is a trend
            trend = self._held.trends.get(tag)
            if trend is not None and trend.active:
                trend.due_at = self._clock.now()


    async def open_incidents(self) -> dict[str, OpenIncident]:
        return {
            key: OpenIncident(
                state.incident_id, state.status, state.detection is None, tuple(state.scope.items())
            )
            for key, state in self._held.incidents.values()
            if state.status in OPEN_STATUSES
        }

    async def customers_in_window(self, rule: SurgeRule, scope: Scope, end: datetime) -> list[str]:
        return sorted(
            {
                a.signal.customer_id
                for a in self._held.signals.values()
                if a.classification.severity is not None
                and scope_of(rule, sighting_of(a)) == scope
                and end - rule.window < a.signal.occurred_at <= end
            }
        )

    async def record_links(self, events: Sequence[NewEvent], cases: Sequence[CaseState]) -> None:
        self._held.save_cases(cases)
        self._held.append(events, self._clock.now())

    async def surge_counts(self, wanted: Sequence[tuple[SurgeRule, Scope, datetime]]) -> list[SurgeCount]:
        counts = []
        for rule, scope, end in wanted:
            sightings = [
                (a.signal.occurred_at, a.signal.customer_id)
                for a in self._held.signals.values()
                if a.classification.severity is not None and scope_of(rule, sighting_of(a)) == scope
            ]
            counts.append(count_surge(rule, scope, end, sightings))
        return counts

    async def record_incidents(self, events: Sequence[IncidentOpened]) -> None:
        for e in events:
            key = scope_key(e)
            if e.incident_id in self._held.incidents or key in await self.open_incidents():
                raise ConcurrencyConflict("UniqueViolationError")  # incidents_one_open_per_scope
            self._held.incidents[e.incident_id] = (key, evolve_incident(None, e))
        self._held.append([NewEvent(incident_stream(e.incident_id), 1, e) for e in events], self._clock.now())


class FakeIncidentTransaction(FakeIntakeTransaction):
    """The incident commands' transaction: the intake's reads and links, and the incident's row and stream."""

    async def now(self) -> datetime:
        return self._clock.now()

    async def incident(self, incident_id: str) -> IncidentState | None:
        found = self._held.incidents.get(incident_id)
        return None if found is None else found[1]

    async def record_incident(self, events: Sequence[IncidentEvent], state: IncidentState) -> None:
        others = {k for i, (k, st) in self._held.incidents.items() if i != state.incident_id and st.status in OPEN_STATUSES}
        if state.status in OPEN_STATUSES and state.scope_key in others:
            raise ConcurrencyConflict("UniqueViolationError")  # incidents_one_open_per_scope
        self._held.incidents[state.incident_id] = (state.scope_key, state)
        first = state.version - len(events) + 1
        stream = incident_stream(state.incident_id)
        self._held.append([NewEvent(stream, first + i, e) for i, e in enumerate(events)], self._clock.now())


class FakeIncidentStore:
    def __init__(self, database: FakeDatabase) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeIncidentTransaction]:
        async with self.database.transaction() as held:
            yield FakeIncidentTransaction(held, self.database.clock)


def sighting_of(a: Applied) -> Sighting:
    s = a.signal
    return Sighting(s.occurred_at, s.customer_id, s.kind.value, str(a.classification.category), s.service, s.region)


class FakeIntakeStore:
    """PostgresIntakeStore's behaviour in memory."""

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeIntakeTransaction]:
        async with self.database.transaction() as held:
            yield FakeIntakeTransaction(held, self.database.clock)

    async def next_offsets(self, group: str, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        stored = self.database.held.offsets
        return {(t, p): stored[group, t, p] for t, p in partitions if (group, t, p) in stored}


class FakeTimerTransaction:
    def __init__(self, held: Held, clock: FakeClock) -> None:
        self._held = held
        self._clock = clock

    async def claim_due(self, limit: int) -> tuple[list[Timer], datetime]:
        now = self._clock.now()
        due = [a.timer for a in self._held.timers.values() if a.fired_at is None and a.timer.due_at <= now]
        return sorted(due, key=lambda t: (t.due_at, t.case_id, t.sla, t.kind))[:limit], now

    async def cases(self, case_ids: Sequence[str]) -> dict[str, CaseState]:
        """The cases whose snapshot reads; the others are left out (their timers are set aside)."""
        readable = {c: self._held.cases[c] for c in case_ids if c in self._held.cases}
        return {c: state for c, state in readable.items() if c not in self._held.unreadable}

    async def record(
        self,
        fired: Sequence[Timer],
        events: Sequence[NewEvent],
        cases: Mapping[str, CaseState],
        timers: Mapping[str, Sequence[Timer]],
        set_aside: Sequence[Timer] = (),
    ) -> None:
        now = self._clock.now()
        for timer, aside in [(t, False) for t in fired] + [(t, True) for t in set_aside]:
            armed = self._held.timers.get((timer.case_id, timer.sla, timer.kind))
            if armed is not None:
                armed.fired_at, armed.set_aside_at = now, now if aside else None
        self._held.save_timers(timers)
        self._held.save_cases(cases.values())
        self._held.append(events, now)

    async def rearm_readable(self, after: timedelta) -> list[str]:
        """Set-aside timers (set aside at least `after` ago) come back when their case reads again.

        At least, as the port says: PostgreSQL compares strictly, but its now() has moved on by the next
        transaction, while this clock moves only when a test moves it."""
        now = self._clock.now()
        aside = [a for a in self._held.timers.values() if a.set_aside_at is not None]
        looked_at = {a.timer.case_id for a in aside if a.set_aside_at and a.set_aside_at <= now - after}
        ids = sorted(looked_at)[:REARM_BATCH]
        readable = await self.cases(ids)
        for a in aside:
            if a.timer.case_id in readable:
                a.fired_at = a.set_aside_at = None
            elif a.timer.case_id in ids:
                a.set_aside_at = now
        return sorted(readable)


class FakeTimerStore:
    """PostgresTimerStore's behaviour in memory."""

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTimerTransaction]:
        async with self.database.transaction() as held:
            yield FakeTimerTransaction(held, self.database.clock)


class FakeTrendTransaction(FakeTrendRecords):
    async def claim_due(self, limit: int) -> list[str]:
        now = self._clock.now()
        due = [
            (t.due_at, tag)
            for tag, t in self._held.trends.items()
            if t.due_at is not None and t.due_at <= now
        ]
        return [tag for _, tag in sorted(due)[:limit]]


class FakeTrendStore:
    """PostgresTrendStore's behaviour in memory."""

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTrendTransaction]:
        async with self.database.transaction() as held:
            yield FakeTrendTransaction(held, self.database.clock)
