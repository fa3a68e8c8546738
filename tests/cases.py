"""One case state to start tests from: open, major, by phone, its clocks running from T0."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.domain.case import CaseIds, CaseState, CaseStatus
from service.domain.severity import Severity
from service.domain.signals import Channel, Tier

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASE_IDS = CaseIds(b"the unit tests' secret for case ids")
"""How the use cases and deciders under test key new cases' ids (the service derives its secret from a master key)."""


def open_case(case_id: str = "c-1", customer_id: str = "cust-1", **changes: object) -> CaseState:
    """An open major case, first response due in 1 h and resolution in 24 h; `changes` replace fields."""
    base = CaseState(
        case_id=case_id,
        customer_id=customer_id,
        ordinal=1,
        status=CaseStatus.OPEN,
        severity=Severity.MAJOR,
        customer_tier=Tier.STANDARD,
        channel=Channel.PHONE,
        opened_at=T0,
        received_at=T0,
        first_response_deadline=T0 + timedelta(hours=1),
        resolution_deadline=T0 + timedelta(hours=24),
        resolution_clock_started_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]
