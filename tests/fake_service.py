"""The HTTP app's backend in memory, for the fast tier: the read port, console sessions, erasures and the probes
over the fake command store's tables (tests/fakes.py), so every route of the API and the console runs in-process
with no database (tests/unit/test_routes.py). tests/read_behaviour.py holds the fake reads and PostgreSQL's to
the same answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.adapters.postgres.case_reads import decode_cursor, decode_queue_cursor, encode_cursor
from service.adapters.postgres.case_writes import event_id
from service.adapters.postgres.console_sessions import MAX_SESSIONS_PER_ACTOR, TOUCH_EVERY
from service.app.erasure import Erasure
from service.app.intake import IntakeRules
from service.app.ports import SessionTimeouts
from service.app.reads import CaseFilter, CaseRead, CaseSignal, IncidentRead, Page, StoredEvent
from service.bootstrap import compensation_limits, intake_rules, session_timeouts
from service.config import Settings
from service.domain.case import CaseState, CaseStatus, awaiting_approval, next_deadline
from service.domain.compensation import CompensationHistory, received_by_currency
from service.domain.compensation_limits import CompensationLimits
from service.domain.incidents import IncidentState, incident_stream
from service.domain.intake import NewEvent
from service.domain.registry import event_shape
from tests.fakes import FakeClock, FakeCommandStore, FakeDatabase, FakeIncidentStore, Held

_NO_CLOCK = datetime.max.replace(tzinfo=UTC)


class FakeCaseReads:
    """PostgresCaseReads's answers from the fake store's tables (texts are held open there)."""

    def __init__(self, store: FakeCommandStore, customer_window: timedelta = timedelta(days=90)) -> None:
        self._store = store
        self._customer_window = customer_window

    @property
    def _held(self) -> Held:
        return self._store.held

    def _signals(self, case_id: str) -> list[CaseSignal]:
        return self._held.case_signals(case_id)

    async def list_cases(self, where: CaseFilter, limit: int, cursor: str | None) -> Page:
        cases = sorted(_matching(self._held, where), key=lambda c: (c.resolution_deadline, c.case_id))
        if cursor:
            after = decode_cursor(cursor)
            cases = [c for c in cases if (c.resolution_deadline, c.case_id) > after]
        return self._page(cases, limit, lambda c: c.resolution_deadline)

    async def queue(self, where: CaseFilter, limit: int, cursor: str | None) -> Page:
        def key(c: CaseState) -> tuple[datetime, str]:
            return next_deadline(c) or _NO_CLOCK, c.case_id  # no running clock sorts last, as 'infinity'

        cases = sorted(_matching(self._held, replace(where, status=CaseStatus.OPEN.value)), key=key)
        if cursor:
            at, case_id = decode_queue_cursor(cursor)
            cases = [c for c in cases if key(c) > (at or _NO_CLOCK, case_id)]
        return self._page(cases, limit, next_deadline)

    def _page(self, cases: list[CaseState], limit: int, key: Any) -> Page:
        shown = cases[:limit]
        more = len(cases) > limit
        reads = [CaseRead(c, self._signals(c.case_id)) for c in shown]
        return reads, encode_cursor(key(shown[-1]), shown[-1].case_id) if more else None

    async def get_case(self, case_id: str) -> tuple[CaseRead, list[StoredEvent]] | None:
        held = self._held
        state = held.cases.get(case_id)
        if state is None:
            return None
        others = [c for c in held.cases.values() if c.customer_id == state.customer_id and c.case_id != case_id]
        history = CompensationHistory(customer=tuple(comp for c in others for comp in c.compensations))
        now = self._store.clock.now()
        received = received_by_currency(state, history, now - self._customer_window)
        return CaseRead(state, self._signals(case_id), received, self._customer_window), _history(held, case_id)

    async def awaiting_approval(self, limit: int, cursor: str | None) -> tuple[list[CaseState], str | None]:
        cases = sorted(
            (c for c in self._held.cases.values() if awaiting_approval(c) and c.status is not CaseStatus.CLOSED),
            key=lambda c: (c.resolution_deadline, c.case_id),
        )
        if cursor:
            after = decode_cursor(cursor)
            cases = [c for c in cases if (c.resolution_deadline, c.case_id) > after]
        more = len(cases) > limit
        shown = cases[:limit]
        return shown, encode_cursor(shown[-1].resolution_deadline, shown[-1].case_id) if more else None

    async def open_cases_by_severity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self._held.cases.values():
            if c.status is CaseStatus.OPEN:
                counts[c.severity.value] = counts.get(c.severity.value, 0) + 1
        return counts

    async def root_causes(self, window_days: int) -> list[tuple[str, int]]:
        since = self._store.clock.now() - timedelta(days=window_days)
        counts: dict[str, int] = {}
        for c in self._held.cases.values():
            if c.resolution is None or c.status is CaseStatus.OPEN or c.resolved_at is None or c.resolved_at < since:
                continue
            counts[c.resolution.root_cause] = counts.get(c.resolution.root_cause, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    async def incidents(self, status: str | None, limit: int) -> list[IncidentState]:
        found = [st for _, st in self._held.incidents.values() if status is None or st.status == status]
        return sorted(found, key=lambda st: (st.opened_at, st.incident_id), reverse=True)[:limit]

    async def incident(self, incident_id: str) -> IncidentRead | None:
        held = self._held
        found = held.incidents.get(incident_id)
        if found is None:
            return None
        counts: dict[str, int] = {}
        for c in held.cases.values():
            if c.incident_id == incident_id:
                counts[c.status.value] = counts.get(c.status.value, 0) + 1
        return IncidentRead(found[1], counts, _history(held, incident_stream(incident_id)))

    async def ping(self, within_seconds: float) -> bool:
        return True


def _history(held: Held, stream: str) -> list[StoredEvent]:
    """A stream's events as the log stores them, in version order."""
    return [
        StoredEvent(
            held.positions[stream][i],
            i + 1,
            event_id(stream, i + 1),
            e.type,
            held.recorded_at[stream][i],
            event_shape(e.type).adapter.dump_json(e).decode(),
        )
        for i, e in enumerate(held.events.get(stream, []))
    ]


def _matching(held: Held, where: CaseFilter) -> list[CaseState]:
    def keep(c: CaseState) -> bool:
        deadline = next_deadline(c)
        return (
            (where.customer_id is None or c.customer_id == where.customer_id)
            and (where.status is None or c.status.value == where.status)
            and (where.severity is None or c.severity.value == where.severity)
            and (where.owner is None or c.owner == where.owner)
            and (not where.unassigned or c.owner is None)
            and (where.due_before is None or c.resolution_deadline < where.due_before)
            and (
                where.next_deadline_before is None
                or (deadline is not None and deadline <= where.next_deadline_before)
            )
        )

    return [c for c in held.cases.values() if keep(c)]


@dataclass
class _Session:
    token_digest: bytes
    actor: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime


class FakeConsoleSessions:
    """PostgresConsoleSessions in a dict: live while seen within the idle timeout and before the lifetime ends."""

    def __init__(self, timeouts: SessionTimeouts) -> None:
        self._timeouts = timeouts
        self.rows: dict[bytes, _Session] = {}

    async def start(self, id_digest: bytes, token_digest: bytes, actor: str, now: datetime) -> None:
        self.rows = {
            k: s for k, s in self.rows.items() if s.seen_at > now - self._timeouts.idle and s.expires_at > now
        }
        self.rows[id_digest] = _Session(token_digest, actor, now, now, now + self._timeouts.lifetime)
        mine = sorted((s.created_at, k) for k, s in self.rows.items() if s.actor == actor)
        for _, k in mine[: max(0, len(mine) - MAX_SESSIONS_PER_ACTOR)]:
            del self.rows[k]

    async def find(self, id_digest: bytes, now: datetime) -> bytes | None:
        found = self.rows.get(id_digest)
        if found is None or found.seen_at <= now - self._timeouts.idle or found.expires_at <= now:
            return None
        if found.seen_at <= now - TOUCH_EVERY:
            found.seen_at = now
        return found.token_digest

    async def end(self, id_digest: bytes) -> None:
        self.rows.pop(id_digest, None)

    async def end_all_of(self, actor: str) -> int:
        ended = [k for k, s in self.rows.items() if s.actor == actor]
        for k in ended:
            del self.rows[k]
        return len(ended)


class FakeErasureTransaction:
    def __init__(self, held: Held, clock: FakeClock) -> None:
        self._held, self._clock = held, clock

    async def erased_before(self, customer_id: str) -> Erasure | None:
        return self._held.erased.get(customer_id)

    async def cases(self, customer_id: str) -> list[CaseState]:
        return sorted((c for c in self._held.cases.values() if c.customer_id == customer_id), key=lambda c: c.ordinal)

    async def now(self) -> datetime:
        return self._clock.now()

    async def erase(
        self, customer_id: str, erasure: Erasure, events: Sequence[NewEvent], cases: Sequence[CaseState]
    ) -> bool:
        """The cases take the pseudonym (their events are replaced by the erased states' history, as the
        PostgreSQL store rewrites them); nothing held: False."""
        held = self._held
        logged = [a for a in held.signals.values() if a.signal.text is not None]
        if not cases and not logged:
            return False
        for case in cases:
            held.cases[case.case_id] = case
        for e in events:
            held.events.setdefault(e.stream_id, []).append(e.event)
            held.recorded_at.setdefault(e.stream_id, []).append(self._clock.now())
            held.positions.setdefault(e.stream_id, []).append(held.next_position())
        for key, a in list(held.signals.items()):
            if a.case_id in erasure.case_ids and a.signal.text is not None:
                held.signals[key] = replace(a, signal=replace(a.signal, text="[erased]"))
        held.erased[customer_id] = erasure
        return True


class FakeErasureStore:
    def __init__(self, store: FakeCommandStore) -> None:
        self._store = store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeErasureTransaction]:
        async with self._store.database.transaction() as held:
            yield FakeErasureTransaction(held, self._store.clock)


class FakeBackend:
    """What http_app serves from, in memory: the same rules as Service reads from the settings."""

    def __init__(self, settings: Settings, clock: FakeClock | None = None) -> None:
        self.rules: IntakeRules = intake_rules(settings)
        self.limits: CompensationLimits = compensation_limits(settings)
        self.store = FakeCommandStore(FakeDatabase(clock))
        self.sessions = FakeConsoleSessions(session_timeouts(settings))
        self.up = {"database": True}
        self.broken: list[str] = []
        self.degraded: list[str] = []

    @property
    def clock(self) -> FakeClock:
        return self.store.clock

    def reads(self) -> FakeCaseReads:
        return FakeCaseReads(self.store, self.limits.customer_window)

    def commands(self) -> FakeCommandStore:
        return self.store

    def console_sessions(self) -> FakeConsoleSessions:
        return self.sessions

    def erasures(self) -> FakeErasureStore:
        return FakeErasureStore(self.store)

    def incident_commands(self) -> FakeIncidentStore:
        return FakeIncidentStore(self.store.database)

    async def ready(self) -> dict[str, bool]:
        return dict(self.up)

    def failures(self) -> list[str]:
        return list(self.broken)

    def degradations(self) -> list[str]:
        return list(self.degraded)
