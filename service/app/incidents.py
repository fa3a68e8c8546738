"""Use case: a manager's command on an incident (declare by hand, confirm a proposal, dismiss), and the one way
cases join an incident (also the intake's: app/intake.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from service.app.conflicts import decided_again_on_conflict
from service.domain.case import CaseState, evolve
from service.domain.errors import WrongState
from service.domain.incident_commands import DeclareIncident, IncidentCommand, decide_incident
from service.domain.incidents import (
    BY_HAND,
    IncidentDeclared,
    IncidentEvent,
    IncidentPolicy,
    IncidentState,
    OpenIncident,
    Scope,
    SurgeRule,
    evolve_incident,
    link,
    scope_text,
)
from service.domain.intake import NewEvent
from service.domain.workflow import Actor

log = structlog.get_logger()


class CaseLinks(Protocol):
    """What joining cases to an incident needs: the customers of a window, their latest cases, the write."""

    async def customers_in_window(self, rule: SurgeRule, scope: Scope, end: datetime) -> list[str]: ...

    async def latest_cases(self, customer_ids: Sequence[str]) -> dict[str, CaseState]: ...

    async def record_links(self, events: Sequence[NewEvent], cases: Sequence[CaseState]) -> None: ...


class IncidentTransaction(CaseLinks, Protocol):
    async def now(self) -> datetime: ...

    async def incident(self, incident_id: str) -> IncidentState | None:
        """The incident, locked until the transaction ends; None: no such incident."""
        ...

    async def open_incidents(self) -> dict[str, OpenIncident]: ...

    async def record_incident(self, events: Sequence[IncidentEvent], state: IncidentState) -> None:
        """The events on the incident's stream and its row (a second open incident of a scope conflicts)."""
        ...


class IncidentStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[IncidentTransaction]: ...


class IncidentNotFound(LookupError):
    pass


@dataclass(frozen=True)
class IncidentResult:
    state: IncidentState
    events: tuple[IncidentEvent, ...]
    linked: int  # cases that joined it now


async def run_incident_command(
    command: IncidentCommand,
    actor: Actor,
    incident_id: str | None,
    store: IncidentStore,
    policy: IncidentPolicy,
) -> IncidentResult:
    """Decide on the incident's latest version (a lost race decides again); one log line, no free text."""
    name = type(command).__name__
    try:
        result, _ = await decided_again_on_conflict(
            lambda: _run_once(command, actor, incident_id, store, policy)
        )
    except Exception as e:
        log.info("command", command=name, actor=actor.name, incident_id=incident_id, result=type(e).__name__)
        raise
    log.info(
        "command",
        command=name,
        actor=actor.name,
        incident_id=result.state.incident_id,
        result="applied" if result.events else "unchanged",
        linked=result.linked,
    )
    return result


async def _run_once(
    command: IncidentCommand,
    actor: Actor,
    incident_id: str | None,
    store: IncidentStore,
    policy: IncidentPolicy,
) -> IncidentResult:
    async with store.transaction() as tx:
        now = await tx.now()
        state = None
        if incident_id is not None:
            state = await tx.incident(incident_id)
            if state is None:
                raise IncidentNotFound(f"no incident {incident_id}")
        if isinstance(command, DeclareIncident):
            key = scope_text(BY_HAND, tuple(command.scope.items()))
            already = (await tx.open_incidents()).get(key)
            if already is not None:
                raise WrongState(f"incident {already.incident_id} is open for this scope already")
        events = decide_incident(command, state, actor, now)
        for event in events:
            state = evolve_incident(state, event)
        assert state is not None
        linked = 0
        if events:
            await tx.record_incident(events, state)
            confirmed = [e for e in events if isinstance(e, IncidentDeclared) and e.detection is not None]
            for e in confirmed:  # a proposal confirmed: the customers whose signals crossed join it
                rule = policy.rule(e.detection.rule) if e.detection else None
                if rule is not None and e.detection is not None:
                    crossed = tuple(e.scope.items())
                    customers = await tx.customers_in_window(rule, crossed, e.detection.window_end)
                    linked += await link_customers(tx, dict.fromkeys(customers, e.incident_id), now)
    return IncidentResult(state, tuple(events), linked)


async def link_customers(tx: CaseLinks, joining: Mapping[str, str], now: datetime) -> int:
    """Each customer's latest case joins its incident (one at most: a case linked already stays as it is);
    how many joined."""
    if not joining:
        return 0
    cases = await tx.latest_cases(sorted(joining))
    events, changed = [], []
    for customer, case in cases.items():
        decided = link(case, joining[customer], now)
        for event in decided:
            case = evolve(case, event)
            events.append(NewEvent(case.case_id, case.version, event))
        if decided:
            changed.append(case)
    await tx.record_links(events, changed)
    return len(changed)
