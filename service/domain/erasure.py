"""Erasing a customer's personal data (their right to erasure) while the records a regulator asks to keep stay.

An owner erases a customer: every case of theirs keeps its counts (severity, category, root cause, SLA outcome,
compensation totals) under a pseudonym, and every personal text reads [erased]. A customer still being served
is refused: an open case, or compensation that billing has not settled or failed yet, says why (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.domain.case import CaseState, CaseStatus, CompensationStatus
from service.domain.errors import NotAllowed, WrongState
from service.domain.events import PersonalDataErased
from service.domain.workflow import Actor

ERASERS = frozenset({"owner"})
_UNSETTLED = frozenset({CompensationStatus.AWAITING_APPROVAL, CompensationStatus.REQUESTED})


def decide_erasure(
    cases: Sequence[CaseState], customer_id: str, pseudonym: str, actor: Actor, now: datetime
) -> list[PersonalDataErased]:
    """One event per case of the customer, oldest first; the latest case's carries the customer id and every
    case id, for the services downstream to erase theirs. No case: nothing to decide (their signals that opened
    none are still erased by the store)."""
    if actor.role not in ERASERS:
        raise NotAllowed(f"role {actor.role} may not erase a customer's personal data (an owner may)")
    ordered = sorted(cases, key=lambda c: c.ordinal)
    for case in ordered:
        if case.status is CaseStatus.OPEN:
            raise WrongState(
                f"customer {customer_id} has open case {case.case_id}: resolve it before erasing their data"
            )
        for c in case.compensations:
            if c.status in _UNSETTLED:
                raise WrongState(
                    f"compensation {c.request_id} on case {case.case_id} is {c.status.value.replace('_', ' ')}:"
                    " erase the customer's data once billing has settled or failed it"
                )
    latest = ordered[-1].case_id if ordered else None
    case_ids = tuple(c.case_id for c in ordered)
    return [
        PersonalDataErased(
            case_id=case.case_id,
            at=now,
            actor=actor.name,
            pseudonym=pseudonym,
            customer_id=customer_id if case.case_id == latest else None,
            case_ids=case_ids if case.case_id == latest else (),
        )
        for case in ordered
    ]
