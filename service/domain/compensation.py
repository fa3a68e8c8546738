"""Compensation: who may grant how much, when it waits for approval, and what billing's answer does."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from service.domain.case import CaseState, CaseStatus, Compensation, CompensationStatus, case_currency
from service.domain.compensation_limits import Allowance, CompensationLimits
from service.domain.errors import InvalidValue, NotAllowed, WrongState
from service.domain.events import (
    CaseEvent,
    CompensationApproved,
    CompensationFailed,
    CompensationKind,
    CompensationRequested,
    CompensationSettled,
)
from service.domain.money import compensation_currency, plain, quantize_amount
from service.domain.workflow import RESOLVERS, Actor

_REQUEST_NAMESPACE = uuid.UUID("3b9d7e2a-6c41-4f58-8a0d-5e7f1c2b9a63")


@dataclass(frozen=True)
class CompensationHistory:
    """The compensations the limits across cases count: the customer's other cases', and the actor's on other cases."""

    customer: tuple[Compensation, ...] = ()
    actor: tuple[Compensation, ...] = ()


ONE_DAY = timedelta(days=1)
_SENT = (CompensationStatus.REQUESTED, CompensationStatus.SETTLED)


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
    history: CompensationHistory,
    now: datetime,
) -> list[CaseEvent]:
    """It goes to billing at once only within every limit that applies: the actor's on the case (counting what they
    granted on it before), the stake, the customer's across cases in the window and the actor's in a day. Otherwise
    it waits for a manager's approval, or an owner's above a limit across cases, and needs_approval says why."""
    if state.status is CaseStatus.CLOSED:
        raise WrongState("the case is closed")
    amount = _checked_amount(state, amount, currency)
    if any(c.request_id == request_id for c in state.compensations):
        return []  # the same request again: billing must never see it twice
    if currency in limits.currencies:
        waits = (
            *_above_limit(state, actor, amount, currency, limits),
            *_above_stake(state, amount, limits),
            *_opened_by_hand(state),
        )
        # the daily limit is on what an actor grants on their own authority: a request that waits is not that
        daily = () if waits else _above_daily_limit(state, history, actor, amount, currency, limits, now)
        owner_waits = (*_above_customer_limit(state, history, amount, currency, limits, now), *daily)
    else:  # default deny
        waits, owner_waits = (), (f"no limits are set in {currency}: every compensation in it waits for an owner",)
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
            needs_approval=(*waits, *owner_waits),
            needs_owner=bool(owner_waits),
        )
    ]


def decide_approve_compensation(
    state: CaseState,
    request_id: str,
    actor: Actor,
    limits: CompensationLimits,
    history: CompensationHistory,
    now: datetime,
) -> list[CaseEvent]:
    """A manager or owner other than the requester (four eyes) approves a waiting request on a case that is not
    closed; a manager only within their limit on the case and the customer's limit across cases, and never one
    that waits for an owner. An owner's approval is where every wait ends. Approving twice changes nothing."""
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
    if actor.role != "owner":
        _check_manager_may_approve(state, request, actor, limits, history, now)
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


def _check_manager_may_approve(
    state: CaseState,
    request: Compensation,
    actor: Actor,
    limits: CompensationLimits,
    history: CompensationHistory,
    now: datetime,
) -> None:
    money = f"{plain(request.amount)} {request.currency}"
    if request.needs_owner:
        raise NotAllowed(
            f"{money} waits for an owner ({'; '.join(request.needs_approval)}): an owner must approve"
        )
    allowance = limits.per_case(actor.role, request.currency, state.category, state.customer_tier)
    if not allowance.covers(request.amount):
        raise NotAllowed(f"{money} is above {allowance.rule}: an owner must approve")
    customer = _above_customer_limit(state, history, request.amount, request.currency, limits, now)
    if customer:
        raise NotAllowed(f"{money}: {customer[0]}; an owner must approve")


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


def customer_received(
    state: CaseState, history: CompensationHistory, currency: str, since: datetime
) -> Decimal:
    """What the customer received in a currency since a time, on all their cases: sent to billing or settled."""
    every = (*history.customer, *state.compensations)
    return sum(
        (c.amount for c in every if c.currency == currency and c.status in _SENT and c.requested_at >= since),
        Decimal(0),
    )


def received_by_currency(
    state: CaseState, history: CompensationHistory, since: datetime
) -> dict[str, Decimal]:
    """What the customer received since a time on all their cases, per currency (what the case page shows)."""
    currencies = sorted({c.currency for c in (*history.customer, *state.compensations)})
    totals = {code: customer_received(state, history, code, since) for code in currencies}
    return {code: total for code, total in totals.items() if total}


def actor_granted(
    state: CaseState, history: CompensationHistory, actor: str, currency: str, since: datetime
) -> Decimal:
    """What an actor granted on their own authority since a time, on every case; what billing failed paid nothing."""
    every = (*history.actor, *state.compensations)
    return sum(
        (
            c.amount
            for c in every
            if c.requested_by == actor
            and c.currency == currency
            and not c.needs_approval
            and c.status is not CompensationStatus.FAILED
            and c.requested_at >= since
        ),
        Decimal(0),
    )


def _above_limit(
    state: CaseState, actor: Actor, amount: Decimal, currency: str, limits: CompensationLimits
) -> tuple[str, ...]:
    allowance = limits.per_case(actor.role, currency, state.category, state.customer_tier)
    before = granted_by(state, actor.name)
    if allowance.covers(before + amount):
        return ()
    if allowance.limit == 0 and allowance.rule.startswith("no "):
        return (f"{allowance.rule}: every {actor.role}'s compensation in {currency} needs approval",)
    if not before:
        return (f"above {allowance.rule}",)
    return (f"above {allowance.rule}: {actor.name} already granted {plain(before)} {currency} on this case",)


def _above_customer_limit(
    state: CaseState,
    history: CompensationHistory,
    amount: Decimal,
    currency: str,
    limits: CompensationLimits,
    now: datetime,
) -> tuple[str, ...]:
    allowance = limits.per_customer(currency)
    before = customer_received(state, history, currency, now - limits.customer_window)
    return _across(allowance, before, amount, currency, f"customer {state.customer_id} received")


def _above_daily_limit(
    state: CaseState,
    history: CompensationHistory,
    actor: Actor,
    amount: Decimal,
    currency: str,
    limits: CompensationLimits,
    now: datetime,
) -> tuple[str, ...]:
    allowance = limits.per_actor_per_day(actor.role, currency)
    before = actor_granted(state, history, actor.name, currency, now - ONE_DAY)
    return _across(allowance, before, amount, currency, f"{actor.name} granted without approval")


def _across(
    allowance: Allowance, before: Decimal, amount: Decimal, currency: str, who: str
) -> tuple[str, ...]:
    if allowance.covers(before + amount):
        return ()
    if allowance.rule.startswith("no "):
        return (f"{allowance.rule}: an owner must approve",)
    return (f"above {allowance.rule}: {who} {plain(before)} {currency} already",)


def _opened_by_hand(state: CaseState) -> tuple[str, ...]:
    if not state.opened_by_hand or state.amount_at_stake is not None:
        return ()
    return ("the case was opened by hand with no amount at stake: every compensation needs approval",)


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
    quantized = quantize_amount(amount, compensation_currency(currency))
    fixed = case_currency(state)
    if fixed is not None and fixed != currency:
        why = "amount at stake" if state.amount_at_stake is not None else "first compensation"
        raise InvalidValue(f"the case is in {fixed} (its {why}); compensate in {fixed}", "currency")
    return quantized
