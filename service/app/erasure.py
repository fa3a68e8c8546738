"""Use case: erase one customer's personal data, all of it in one transaction, and tell the services downstream.

The domain decides (an owner; nobody still being served); the store replaces the customer id by a pseudonym
and every personal text by [erased] wherever it is kept (the events, the snapshots, the signal log, the
remembered answers), destroys the customer's key, and remembers the erasure by a keyed hash of the id. The
latest case's event carries the id to the relay, which publishes recovery.customer.erased and then forgets it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from service.app.conflicts import decided_again_on_conflict
from service.domain.case import CaseState, evolve
from service.domain.erasure import decide_erasure
from service.domain.intake import NewEvent
from service.domain.workflow import Actor

log = structlog.get_logger()


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the pseudonym the customer's cases carry now, and those cases."""

    pseudonym: str
    case_ids: tuple[str, ...]
    erased_at: datetime
    erased_by: str
    repeated: bool = False  # erased before, and nothing of theirs has been stored since


class NothingHeld(LookupError):
    """The service holds nothing about the customer and never erased them."""


class ErasureTransaction(Protocol):
    async def erased_before(self, customer_id: str) -> Erasure | None: ...

    async def cases(self, customer_id: str) -> list[CaseState]:
        """The customer's cases, their texts as stored; the customer's commands wait for this transaction."""
        ...

    async def now(self) -> datetime: ...

    async def erase(
        self, customer_id: str, erasure: Erasure, events: Sequence[NewEvent], cases: Sequence[CaseState]
    ) -> bool:
        """Apply the erasure everywhere; whether anything of the customer was held."""
        ...


class ErasureStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ErasureTransaction]: ...


async def erase_customer(customer_id: str, actor: Actor, store: ErasureStore) -> Erasure:
    """Erase now, or answer as before when nothing was stored since; a lost race decides again. One log line
    (the actor and the pseudonym: the customer id is what is being erased)."""
    try:
        erasure, _ = await decided_again_on_conflict(lambda: _erase_once(customer_id, actor, store))
    except Exception as e:
        log.info("command", command="erase_customer", actor=actor.name, result=type(e).__name__)
        raise
    log.info(
        "command",
        command="erase_customer",
        actor=actor.name,
        pseudonym=erasure.pseudonym,
        cases=len(erasure.case_ids),
        result="repeated" if erasure.repeated else "applied",
    )
    return erasure


async def _erase_once(customer_id: str, actor: Actor, store: ErasureStore) -> Erasure:
    async with store.transaction() as tx:
        before = await tx.erased_before(customer_id)
        cases = await tx.cases(customer_id)
        now = await tx.now()
        decided = decide_erasure(cases, customer_id, f"erased-{uuid.uuid4()}", actor, now)
        events, states = [], []
        for case, event in zip(sorted(cases, key=lambda c: c.ordinal), decided, strict=True):
            state = evolve(case, event)
            events.append(NewEvent(case.case_id, state.version, event))
            states.append(state)
        pseudonym = decided[0].pseudonym if decided else f"erased-{uuid.uuid4()}"
        erasure = Erasure(pseudonym, tuple(s.case_id for s in states), now, actor.name)
        if not await tx.erase(customer_id, erasure, events, states):
            if before is not None:
                return Erasure(before.pseudonym, before.case_ids, before.erased_at, before.erased_by, True)
            raise NothingHeld(f"the service holds no data about customer {customer_id}")
    return erasure
