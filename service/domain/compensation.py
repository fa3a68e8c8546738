"""Compensation: who may grant how much, when it waits for approval, and what billing's answer does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from service.domain.case import CaseState, CaseStatus, CompensationStatus
from service.domain.errors import InvalidValue, NotAllowed, WrongState
from service.domain.events import (
    CaseEvent,
    CompensationApproved,
    CompensationFailed,
    CompensationKind,
    CompensationRequested,
    CompensationSettled,
)
from service.domain.money import quantize_amount
from service.domain.workflow import RESOLVERS, Actor

_REQUEST_NAMESPACE = uuid.UUID("3b9d7e2a-6c41-4f58-8a0d-5e7f1c2b9a63")


@dataclass(frozen=True)
class CompensationLimits:
    """Per-role limits in the case's currency (None: unlimited) and how far above the stake needs approval."""

    by_role: Mapping[str, Decimal | None] = field(
        default_factory=lambda: {"agent": Decimal(50), "manager": Decimal(500), "owner": None}
    )
    stake_factor: Decimal = Decimal("1.5")

    def covers(self, role: str, amount: Decimal) -> bool:
        limit = self.by_role.get(role, Decimal(0))
        return limit is None or amount <= limit


def compensation_request_id(case_id: str, actor: str, idempotency_key: str | None, ordinal: int) -> str:
    """Billing's request id: unique across all cases, and the same whenever the same actor repeats a key on a case.

    With an Idempotency-Key it is a uuid5 of (case, actor, key); without one, of (case, the request's
    number on the case). Billing dedupes on it, so it must never name two requests.
    """
    name = [case_id, actor, idempotency_key] if idempotency_key is not None else [case_id, ordinal]
    return str(uuid.uuid5(_REQUEST_NAMESPACE, json.dumps(name)))


def decide_request_compensation(
    state: CaseState,
    request_id: str,
    kind: CompensationKind,
    amount: Decimal,
    currency: str,
    reason: str,
    actor: Actor,
    limits: CompensationLimits,
    now: datetime,
) -> list[CaseEvent]:
    """Within the actor's limit and the stake it goes to billing at once; otherwise it waits for approval."""
    if state.status is CaseStatus.CLOSED:
        raise WrongState("the case is closed")
    amount = _checked_amount(state, amount, currency)
    if any(c.request_id == request_id for c in state.compensations):
        return []  # the same request again: billing must never see it twice
    waits = []
    if not limits.covers(actor.role, amount):
        waits.append(f"above the {actor.role} limit")
    stake = state.amount_at_stake
    if stake is not None and amount > stake.amount * limits.stake_factor:
        waits.append(
            f"more than {limits.stake_factor}x the amount at stake ({stake.amount} {stake.currency})"
        )
    return [
        CompensationRequested(
            case_id=state.case_id,
            at=now,
            actor=actor.name,
            request_id=request_id,
            customer_id=state.customer_id,
            kind=kind,
            amount=amount,
            currency=currency,
            reason=reason,
            needs_approval=tuple(waits),
        )
    ]


def decide_approve_compensation(
    state: CaseState, request_id: str, actor: Actor, limits: CompensationLimits, now: datetime
) -> list[CaseEvent]:
    """A manager or owner approves a waiting request within their own limit; approving twice changes nothing."""
    if actor.role not in RESOLVERS:
        raise NotAllowed(f"role {actor.role} may not approve compensation (manager or owner may)")
    request = next((c for c in state.compensations if c.request_id == request_id), None)
    if request is None:
        raise InvalidValue(f"case {state.case_id} has no compensation request {request_id}", "request_id")
    if request.status is not CompensationStatus.AWAITING_APPROVAL:
        return []
    if not limits.covers(actor.role, request.amount):
        raise NotAllowed(
            f"{request.amount} {request.currency} is above the {actor.role} limit: an owner must approve"
        )
    return [
        CompensationApproved(
            case_id=state.case_id,
            at=now,
            actor=actor.name,
            request_id=request_id,
            customer_id=state.customer_id,
            kind=request.kind,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
        )
    ]


def decide_compensation_result(
    state: CaseState, request_id: str, settled: bool, detail: str, now: datetime
) -> list[CaseEvent]:
    """Billing's answer lands once on the request it names; a repeated answer changes nothing."""
    request = next((c for c in state.compensations if c.request_id == request_id), None)
    if request is None:
        raise InvalidValue(f"case {state.case_id} has no compensation request {request_id}", "request_id")
    if request.status in (CompensationStatus.SETTLED, CompensationStatus.FAILED):
        return []
    if settled:
        return [CompensationSettled(case_id=state.case_id, at=now, request_id=request_id, reference=detail)]
    return [CompensationFailed(case_id=state.case_id, at=now, request_id=request_id, reason=detail)]


def _checked_amount(state: CaseState, amount: Decimal, currency: str) -> Decimal:
    quantized = quantize_amount(amount, currency)
    stake = state.amount_at_stake
    if stake is not None and stake.currency != currency:
        raise InvalidValue(f"the case's amount at stake is in {stake.currency}; compensate in it", "currency")
    return quantized
