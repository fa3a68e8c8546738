"""What staff read (the API, the console, the metrics): the read port and the values it answers with.

PostgreSQL answers from the case read model and the event log (adapters/postgres/case_reads.py); the fast
tier's fake from memory (tests/fake_service.py). Every case, signal and event read here has its personal texts
opened: these reads are for staff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from service.domain.case import CaseState
from service.domain.incidents import IncidentState


@dataclass(frozen=True)
class CaseFilter:
    customer_id: str | None = None
    status: str | None = None
    severity: str | None = None
    owner: str | None = None
    due_before: datetime | None = None
    unassigned: bool = False  # only cases with no owner
    next_deadline_before: datetime | None = None  # the next deadline of a running clock at or before this


@dataclass(frozen=True)
class StoredEvent:
    position: int
    version: int
    event_id: str
    type: str
    recorded_at: datetime
    data: str


@dataclass(frozen=True)
class CaseSignal:
    source: str
    id: str
    type: str  # the CloudEvents type, recovery.signal.<kind>
    severity: str
    reasons: list[str]
    policy_version: str | None  # the classification policy that gave the reasons; null for older signals
    category: str
    occurred_at: datetime
    received_at: datetime
    text: str | None = None  # the customer's words, opened; None: it had none, or was logged before they were kept


@dataclass(frozen=True)
class CaseRead:
    state: CaseState
    signals: list[CaseSignal]
    # what the customer received on all their cases in the limits' window, per currency (a single case's read)
    customer_received: Mapping[str, Decimal] = field(default_factory=dict)
    customer_window: timedelta | None = None


@dataclass(frozen=True)
class IncidentRead:
    state: IncidentState
    cases: Mapping[str, int]  # the linked cases by status
    history: list[StoredEvent]


class InvalidCursor(ValueError):
    pass


Page = tuple[list[CaseRead], str | None]  # the cases, and the cursor of the next page when there is one


class CaseReads(Protocol):
    async def list_cases(self, where: CaseFilter, limit: int, cursor: str | None) -> Page:
        """Cases soonest resolution deadline first, keyset-paginated on (resolution_deadline, case_id)."""
        ...

    async def queue(self, where: CaseFilter, limit: int, cursor: str | None) -> Page:
        """Open cases, the next deadline of a running clock first (none: last), then case id."""
        ...

    async def get_case(self, case_id: str) -> tuple[CaseRead, list[StoredEvent]] | None:
        """The case with its signals and what its customer received, and its history in version order."""
        ...

    async def awaiting_approval(self, limit: int, cursor: str | None) -> tuple[list[CaseState], str | None]:
        """Cases with a compensation waiting for approval, not closed, soonest resolution deadline first."""
        ...

    async def open_cases_by_severity(self) -> dict[str, int]: ...

    async def root_causes(self, window_days: int) -> list[tuple[str, int]]:
        """Resolved cases per root-cause tag within the trailing window, most first (then by tag)."""
        ...

    async def incidents(self, status: str | None, limit: int) -> list[IncidentState]:
        """Incidents newest first, of one status or all."""
        ...

    async def incident(self, incident_id: str) -> IncidentRead | None:
        """The incident, its linked cases counted by status, and its history in version order."""
        ...

    async def ping(self, within_seconds: float) -> bool:
        """Whether the store answers within that many seconds (the readiness probe)."""
        ...
