"""Compensation: who may grant how much, when it waits for approval, and what billing's answer does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from service.domain.case import CaseState, CaseStatus, Compensation, CompensationStatus, case_currency
from service.domain.errors import InvalidValue, NotAllowed, WrongState
from service.domain.events import (
    CaseEvent,
    CompensationApproved,
    CompensationFailed,
    CompensationKind,
    CompensationRequested,
    CompensationSettled,
)
from service.domain.money import plain, quantize_amount
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
    """Within the actor's limit and the stake, counting what was granted on the case before, it goes to billing
    at once; otherwise it waits for approval, and needs_approval says why."""
    if state.status is CaseStatus.CLOSED:
        raise WrongState("the case is closed")
    amount = _checked_amount(state, amount, currency)
    if any(c.request_id == request_id for c in state.compensations):
        return []  # the same request again: billing must never see it twice
    waits = (*_above_limit(state, actor, amount, currency, limits), *_above_stake(state, amount, limits))
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
            needs_approval=waits,
        )
    ]


def decide_approve_compensation(
    state: CaseState, request_id: str, actor: Actor, limits: CompensationLimits, now: datetime
) -> list[CaseEvent]:
    """A manager or owner other than the requester (four eyes) approves a waiting request within their own limit,
    on a case that is not closed; approving twice changes nothing."""
    if actor.role not in RESOLVERS:
        raise NotAllowed(f"role {actor.role} may not approve compensation (manager or owner may)")
    request = _request(state, request_id)
    if request.requested_by == actor.name:
        raise NotAllowed(
            f"{actor.name} requested it: no one approves a compensation they requested (four eyes);"
            " another manager or owner must approve"
        )
    if request.status is not CompensationStatus.AWAITING_APPROVAL:
        return []
    if state.status is CaseStatus.CLOSED:
        raise WrongState("the case is closed: reopen it (with a reason) to approve a waiting compensation")
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
    """Billing's answer lands once on the request it names, closed case or not; a repeated answer changes nothing;
    an answer to a request still waiting for approval is refused: billing was never sent it."""
    request = _request(state, request_id)
    if request.status in (CompensationStatus.SETTLED, CompensationStatus.FAILED):
        return []
    if request.status is CompensationStatus.AWAITING_APPROVAL:
        raise WrongState(
            f"compensation request {request_id} still waits for approval ({'; '.join(request.needs_approval)}):"
            " it was never sent to billing"
        )
    if settled:
        return [CompensationSettled(case_id=state.case_id, at=now, request_id=request_id, reference=detail)]
    return [CompensationFailed(case_id=state.case_id, at=now, request_id=request_id, reason=detail)]


def granted_by(state: CaseState, actor: str) -> Decimal:
    """What an actor granted on the case on their own authority (no approval); what billing failed paid nothing."""
    return sum(
        (
            c.amount
            for c in state.compensations
            if c.requested_by == actor and not c.needs_approval and c.status is not CompensationStatus.FAILED
        ),
        Decimal(0),
    )


def granted(state: CaseState) -> Decimal:
    """What the case granted, by anyone, approved or not: sent to billing or settled; not waiting, not failed."""
    sent = (CompensationStatus.REQUESTED, CompensationStatus.SETTLED)
    return sum((c.amount for c in state.compensations if c.status in sent), Decimal(0))


def _above_limit(
    state: CaseState, actor: Actor, amount: Decimal, currency: str, limits: CompensationLimits
) -> tuple[str, ...]:
    before = granted_by(state, actor.name)
    if limits.covers(actor.role, before + amount):
        return ()
    if not before:
        return (f"above the {actor.role} limit",)
    limit = plain(limits.by_role.get(actor.role) or Decimal(0))
    return (
        f"above the {actor.role} limit of {limit} {currency}:"
        f" {actor.name} already granted {plain(before)} {currency} on this case",
    )


def _above_stake(state: CaseState, amount: Decimal, limits: CompensationLimits) -> tuple[str, ...]:
    stake = state.amount_at_stake
    if stake is None:
        return ()
    if not stake.amount:
        return (
            f"nothing is at stake ({plain(stake.amount)} {stake.currency}): every compensation needs approval",
        )
    before = granted(state)
    if before + amount <= stake.amount * limits.stake_factor:
        return ()
    reason = f"more than {limits.stake_factor}x the amount at stake ({plain(stake.amount)} {stake.currency})"
    return (f"{reason}: {plain(before)} {stake.currency} already granted on this case" if before else reason,)


def _request(state: CaseState, request_id: str) -> Compensation:
    request = next((c for c in state.compensations if c.request_id == request_id), None)
    if request is None:
        raise InvalidValue(f"case {state.case_id} has no compensation request {request_id}", "request_id")
    return request


def _checked_amount(state: CaseState, amount: Decimal, currency: str) -> Decimal:
    quantized = quantize_amount(amount, currency)
    fixed = case_currency(state)
    if fixed is not None and fixed != currency:
        why = "amount at stake" if state.amount_at_stake is not None else "first compensation"
        raise InvalidValue(f"the case is in {fixed} (its {why}); compensate in {fixed}", "currency")
    return quantized
