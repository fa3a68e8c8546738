"""The stores of one database, fake or PostgreSQL, as every behaviour is given them; and the few steps the
behaviours share (a case opened, a command applied)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from service.app.commands import CommandStore
from service.app.incidents import IncidentStore
from service.app.ports import IntakeStore
from service.app.timers import TimerStore
from service.app.trends import TrendStore
from service.domain.case import CaseState, evolve
from service.domain.commands import CommandRules, Facts, OpenByHand, decide
from service.domain.intake import NewEvent
from service.domain.severity import Severity
from service.domain.signals import Tier
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS

TAG = "scheduling"
RULES = CommandRules(SlaPolicy(), root_causes={TAG, "billing_error"}, case_ids=CASE_IDS)
MIA, ANA = Actor("mia", "manager"), Actor("ana", "agent")


@dataclass(frozen=True)
class Stores:
    """Every store port over one database, and the one thing a behaviour does behind their backs."""

    commands: CommandStore
    intake: IntakeStore
    timers: TimerStore
    trends: TrendStore
    damage: Callable[[str], Awaitable[None]]  # the case's stored snapshot no longer parses
    repair: Callable[[str], Awaitable[None]]  # it reads again, as it was
    incidents: IncidentStore


Behaviour = Callable[[Stores], Awaitable[None]]


async def now_of(stores: Stores) -> datetime:
    """The database's clock (PostgreSQL's now(), the fake's clock): what due times are measured against."""
    async with stores.commands.transaction() as tx:
        return await tx.now()


async def opened(store: CommandStore, customer_id: str) -> CaseState:
    """A case opened by hand for the customer, recorded."""
    async with store.transaction() as tx:
        command = OpenByHand(customer_id, Severity.MAJOR, None, Tier.STANDARD, "escalated")
        [event] = decide(command, None, Facts(MIA, await tx.now()), RULES)
        state = evolve(None, event)
        await tx.record([NewEvent(state.case_id, 1, event)], state, {})
    return state


async def after(store: CommandStore, case: CaseState, actor: Actor, command: object) -> CaseState:
    """The case after the command, recorded at its next version."""
    async with store.transaction() as tx:
        events = decide(command, case, Facts(actor, await tx.now()), RULES)  # type: ignore[arg-type]
        state = case
        for event in events:
            state = evolve(state, event)
        await tx.record(
            [NewEvent(state.case_id, case.version + 1 + i, e) for i, e in enumerate(events)], state, {}
        )
    return state
