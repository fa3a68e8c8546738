"""Use case: one staff command on one case, decided in the domain and appended with optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from service.app.conflicts import decided_again_on_conflict
from service.app.trends import TrendTransaction, watch_trend
from service.domain.case import CaseState, evolve
from service.domain.compensation import ONE_DAY, CompensationHistory, decide_compensation_result
from service.domain.errors import InvalidValue, StaleVersion
from service.domain.events import CaseEvent
from service.domain.intake import NewEvent, changed_timers, root_causes_moved
from service.domain.sla import SlaPolicy
from service.domain.timers import Timer
from service.domain.trends import TrendPolicy

log = structlog.get_logger()
Decide = Callable[[CaseState, datetime], list[CaseEvent]]
# (the case, its customer's latest case, now): for rules that look at the customer's newer cases
DecideWithLatest = Callable[[CaseState, CaseState, datetime], list[CaseEvent]]
# (the case, the compensations the limits across cases count, now): compensation requests and approvals
DecideWithHistory = Callable[[CaseState, CompensationHistory, datetime], list[CaseEvent]]
Render = Callable[[CaseState, list[Any]], dict[str, Any]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class CaseNotFound(LookupError):
    pass


class CommandTransaction(TrendTransaction, Protocol):
    async def prior_answer(self, actor: str, target: str, key: str) -> tuple[str, Answer] | None: ...

    async def case(self, case_id: str) -> CaseState | None: ...

    async def latest_case(self, customer_id: str) -> CaseState | None: ...

    async def now(self) -> datetime: ...

    async def signals(self, case_id: str) -> list[Any]: ...

    async def compensation_history(
        self, case: CaseState, actor: str, actor_since: datetime
    ) -> CompensationHistory:
        """The customer's other cases' compensations and the actor's on other cases since then, each customer's
        and actor's requests serialised to the transaction's end so that two of them never pass a limit together."""
        ...

    async def record(
        self, events: Sequence[NewEvent], case: CaseState, timers: Mapping[str, Sequence[Timer]]
    ) -> None: ...

    async def remember(self, actor: str, target: str, key: str, command: str, answer: Answer) -> None: ...


class CommandStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[CommandTransaction]: ...


@dataclass(frozen=True)
class Command:
    case_id: str
    name: str  # e.g. "resolve": a reused Idempotency-Key must name the same command
    actor: str
    idempotency_key: str | None
    decide: Decide
    trends: TrendPolicy = TrendPolicy()
    opens_for: str | None = None  # a customer id: the command opens that customer's next case
    opens: Callable[[CaseState | None, datetime], list[CaseEvent]] = lambda latest, now: []
    # decides in place of `decide` when the rule needs the customer's latest case too (reopen, follow-up)
    with_latest: DecideWithLatest | None = None
    # decides in place of `decide` when the rule counts compensations across cases (the limits)
    with_history: DecideWithHistory | None = None
    traceparent: str | None = None  # W3C trace context of the request: the events it causes carry it on
    # If-Match: the case version the command was decided on (None: the latest); checked in its transaction
    expected_version: int | None = None
    logged: bool = True  # one log line for it; a policy apply's thousands of corrections are summed up instead

    @property
    def target(self) -> str:
        """What an Idempotency-Key is scoped to, with the actor: the case, or the customer a case is opened for."""
        return self.case_id if self.opens_for is None else f"customer/{self.opens_for}"


async def run_command(command: Command, store: CommandStore, sla: SlaPolicy, render: Render) -> Answer:
    """Decide and append in one transaction; a repeated key returns the first answer; a lost race decides again.
    One log line per command (case, actor, command, result; never free text), refused or failed ones included."""
    facts = {"command": command.name, "actor": command.actor, "customer_id": command.opens_for}
    try:
        answer = await _decided_and_appended(command, store, sla, render)
    except Exception as e:  # logged with the refusal's or failure's type only (its detail may quote input), re-raised
        if command.logged:
            log.info("command", **facts, case_id=command.case_id or None, result=type(e).__name__)
        raise
    if command.logged:
        case_id = answer.body.get("case_id", command.case_id)
        log.info("command", **facts, case_id=case_id, result="applied", version=answer.body.get("version"))
    return answer


async def _decided_and_appended(command: Command, store: CommandStore, sla: SlaPolicy, render: Render) -> Answer:
    answer, _ = await decided_again_on_conflict(lambda: _run_once(command, store, sla, render))
    return answer


async def _run_once(command: Command, store: CommandStore, sla: SlaPolicy, render: Render) -> Answer:
    async with store.transaction() as tx:
        if command.idempotency_key is not None:
            prior = await tx.prior_answer(command.actor, command.target, command.idempotency_key)
            if prior is not None:
                return _same_command(prior, command)
        if command.opens_for is not None:
            before = None
            events = command.opens(await tx.latest_case(command.opens_for), await tx.now())
        else:
            before = await tx.case(command.case_id)
            if before is None:
                raise CaseNotFound(command.case_id)
            _check_version(command.expected_version, before)
            events = await _decided(tx, command, before)
        state = await _append(tx, before, events, sla, command.trends, command.traceparent)
        answer = Answer(201 if before is None else 200, render(state, await tx.signals(state.case_id)))
        if command.idempotency_key is not None:
            await tx.remember(command.actor, command.target, command.idempotency_key, command.name, answer)
    return answer


async def _decided(tx: CommandTransaction, command: Command, case: CaseState) -> list[CaseEvent]:
    now = await tx.now()
    if command.with_history is not None:
        history = await tx.compensation_history(case, command.actor, now - ONE_DAY)
        return command.with_history(case, history, now)
    if command.with_latest is None:
        return command.decide(case, now)
    return command.with_latest(case, await tx.latest_case(case.customer_id) or case, now)


async def _append(
    tx: CommandTransaction,
    before: CaseState | None,
    events: list[CaseEvent],
    sla: SlaPolicy,
    trends: TrendPolicy,
    traceparent: str | None,
) -> CaseState:
    state = before
    new_events = []
    for event in events:
        state = evolve(state, event)
        new_events.append(NewEvent(state.case_id, state.version, event, traceparent))
    assert state is not None, "a command on no case decided nothing"
    if new_events:
        old = {} if before is None else {before.case_id: before}
        await tx.record(new_events, state, changed_timers(old, {state.case_id: state}, sla))
        # a resolution can cross a tag's threshold, a reopen (staff's, or a follow-up not satisfied) can
        # take it below: either way the tag is looked at again in this transaction
        for tag in sorted(root_causes_moved(old.values(), {state.case_id: state})):
            await watch_trend(tx, tag, trends)
    return state


def _check_version(expected: int | None, case: CaseState) -> None:
    """Two people working one case never overwrite each other: a command decided on an older version is refused."""
    if expected is not None and expected != case.version:
        raise StaleVersion(
            f"This case changed since you loaded it (you saw version {expected}, it is now at version"
            f" {case.version}). Reload the page to see what changed, then try again.",
            "If-Match",
        )


def _same_command(prior: tuple[str, Answer], command: Command) -> Answer:
    name, answer = prior
    if name != command.name:
        raise InvalidValue(
            f"Idempotency-Key was first used for {name!r}, not {command.name!r}", "Idempotency-Key"
        )
    return answer


class CompensationLookup(Protocol):
    async def case_for_request(self, request_id: str) -> str | None: ...


async def land_compensation_result(
    request_id: str,
    settled: bool,
    detail: str,
    lookup: CompensationLookup,
    store: CommandStore,
    sla: SlaPolicy,
    traceparent: str | None = None,
) -> None:
    """Billing's answer lands on the case that asked; an answer for no known request is refused."""
    case_id = await lookup.case_for_request(request_id)
    if case_id is None:
        raise InvalidValue(f"no compensation request {request_id}", "request_id")

    def decide(state: CaseState, now: datetime) -> list[CaseEvent]:
        return decide_compensation_result(state, request_id, settled, detail, now)

    await run_command(
        Command(case_id, "compensation_result", "billing", None, decide, traceparent=traceparent),
        store,
        sla,
        lambda s, _: {},
    )
