"""What the use cases need from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.domain.case import CaseState
from service.domain.incidents import IncidentOpened, OpenIncident, Scope, SurgeCount, SurgeRule
from service.domain.intake import IntakePlan, NewEvent

SignalKey = tuple[str, str]  # (source, id)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One row of the event log, as the outgoing relay reads it; `data` is the stored JSON text."""

    position: int
    stream_id: str
    version: int
    event_id: str
    type: str
    data: str
    recorded_at: datetime
    traceparent: str | None = None  # W3C trace context of what caused the event; published as ce_traceparent
    schema_version: int = 1  # of its type's stored shape: the relay publishes the current shape


PartitionKey = tuple[str, int]  # (topic, partition)


class IntakeTransaction(Protocol):
    async def seen(self, keys: Sequence[SignalKey]) -> set[SignalKey]: ...

    async def latest_cases(self, customer_ids: Sequence[str]) -> dict[str, CaseState]: ...

    async def recent_failures(
        self, customer_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]: ...

    async def record(
        self, plan: IntakePlan, group: str, next_offsets: Mapping[PartitionKey, int]
    ) -> None: ...

    async def open_incidents(self) -> dict[str, OpenIncident]:
        """The incidents proposed or declared, by scope key (incidents.scope_key)."""
        ...

    async def customers_in_window(self, rule: SurgeRule, scope: Scope, end: datetime) -> list[str]:
        """The distinct customers of the scope's failures in the rule's window ending at `end`."""
        ...

    async def record_links(self, events: Sequence[NewEvent], cases: Sequence[CaseState]) -> None:
        """Cases joining incidents: their events and snapshots (no clock moves, so no timer changes)."""
        ...

    async def surge_counts(self, wanted: Sequence[tuple[SurgeRule, Scope, datetime]]) -> list[SurgeCount]:
        """Each (rule, scope, window end)'s count of distinct customers, the signals recorded so far included;
        the baseline only where the floor is reached (domain/incidents.py count_surge says what each means)."""
        ...

    async def record_incidents(self, events: Sequence[IncidentOpened]) -> None:
        """New incidents; one whose scope is open already is a ConcurrencyConflict (another batch won)."""
        ...


class IntakeStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[IntakeTransaction]: ...

    async def next_offsets(
        self, group: str, partitions: Sequence[PartitionKey]
    ) -> dict[PartitionKey, int]: ...


class Sentiment(Protocol):
    def compound(self, text: str | None) -> float | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    idle: timedelta  # unused this long: ended
    lifetime: timedelta  # this long after sign-in: ended, however used


class ConsoleSessionStore(Protocol):
    """Console sessions by the digest of their id; `now` is the caller's clock."""

    async def start(self, id_digest: bytes, token_digest: bytes, actor: str, now: datetime) -> None:
        """A new session of the actor; ended ones go, and the actor's oldest beyond the bound."""
        ...

    async def find(self, id_digest: bytes, now: datetime) -> bytes | None:
        """The token digest of a live session (None when there is none), extending its idle timeout."""
        ...

    async def end(self, id_digest: bytes) -> None: ...

    async def end_all_of(self, actor: str) -> int:
        """Ends every session of the actor at once; answers how many there were."""
        ...
