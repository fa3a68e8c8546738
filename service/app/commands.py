"""Use case: one staff command on one case, decided in the domain and appended with optimistic concurrency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from service.app.conflicts import decided_again_on_conflict
from service.app.trends import TrendTransaction, watch_trend
from service.domain.case import CaseState, evolve
from service.domain.commands import (
    NEEDS_HISTORY,
    NEEDS_LATEST,
    Command,
    CommandRules,
    Facts,
    LandCompensationResult,
    OpenByHand,
    command_name,
    decide,
)
from service.domain.compensation import ONE_DAY, CompensationHistory
from service.domain.errors import InvalidValue, StaleVersion
from service.domain.events import CaseEvent
from service.domain.intake import NewEvent, changed_timers, root_causes_moved
from service.domain.sla import SlaPolicy
from service.domain.timers import Timer
from service.domain.trends import TrendPolicy
from service.domain.workflow import Actor

log = structlog.get_logger()
NO_TRENDS = TrendPolicy()  # for commands that resolve or reopen nothing
BILLING = Actor("billing", "system")  # the billing-results consumer, sending billing's answers


@dataclass(frozen=True, slots=True)
class Remembered:
    """The domain result an Idempotency-Key is remembered with: the case the command left and at which version.
    A version of None (answers remembered by releases before this one, whose version was not kept): the case as
    it is now."""

    case_id: str
    version: int | None
    opened: bool  # the command opened the case
    at: datetime  # when it was answered


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the case as it left it, the events it appended (none when it changed nothing or
    repeated a key), whether it opened the case, and the case's signals. The HTTP adapter picks status codes."""

    state: CaseState
    events: tuple[CaseEvent, ...]
    opened: bool
    signals: list[Any]
    repeated: bool = False  # a repeated Idempotency-Key: the first answer's case, nothing decided now
    at: datetime | None = None  # when it was answered (a repeat: the first time)


class CaseNotFound(LookupError):
    pass


class CommandTransaction(TrendTransaction, Protocol):
    async def prior_answer(self, actor: str, target: str, key: str) -> tuple[str, Remembered] | None: ...

    async def case(self, case_id: str) -> CaseState | None: ...

    async def case_at(self, case_id: str, version: int | None) -> CaseState | None:
        """The case as it was at that version (None: as it is now), from its events."""
        ...

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

    async def remember(self, actor: str, target: str, key: str, command: str, result: Remembered) -> None: ...


class CommandStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[CommandTransaction]: ...


@dataclass(frozen=True)
class Submission:
    """A command as it was sent: by whom, on which case (none for one that opens a case), and how."""

    command: Command
    actor: Actor
    case_id: str = ""
    idempotency_key: str | None = None
    # If-Match: the case version the command was decided on (None: the latest); checked in its transaction
    expected_version: int | None = None
    traceparent: str | None = None  # W3C trace context of the request: the events it causes carry it on
    logged: bool = (
        True  # one log line for it; a policy apply's thousands of corrections are summed up instead
    )

    @property
    def name(self) -> str:
        return command_name(self.command)

    @property
    def target(self) -> str:
        """What an Idempotency-Key is scoped to, with the actor: the case, or the customer a case is opened for."""
        if isinstance(self.command, OpenByHand):
            return f"customer/{self.command.customer_id}"
        return self.case_id


async def run_command(
    submission: Submission, store: CommandStore, rules: CommandRules, trends: TrendPolicy = NO_TRENDS
) -> CommandResult:
    """Decide and append in one transaction; a repeated key returns the first answer's case; a lost race decides
    again. One log line per command (case, actor, command, result; never free text), refused or failed included."""
    opening = isinstance(submission.command, OpenByHand)
    facts = {
        "command": submission.name,
        "actor": submission.actor.name,
        "customer_id": submission.command.customer_id if isinstance(submission.command, OpenByHand) else None,
    }
    try:
        result, _ = await decided_again_on_conflict(lambda: _run_once(submission, store, rules, trends))
    except (
        Exception
    ) as e:  # logged with the refusal's or failure's type only (its detail may quote input), re-raised
        if submission.logged:
            log.info("command", **facts, case_id=submission.case_id or None, result=type(e).__name__)
        raise
    if submission.logged:
        outcome = "repeated" if result.repeated else "applied" if result.events or opening else "unchanged"
        log.info(
            "command", **facts, case_id=result.state.case_id, result=outcome, version=result.state.version
        )
    return result


async def _run_once(
    submission: Submission, store: CommandStore, rules: CommandRules, trends: TrendPolicy
) -> CommandResult:
    command, key = submission.command, submission.idempotency_key
    async with store.transaction() as tx:
        if key is not None:
            prior = await tx.prior_answer(submission.actor.name, submission.target, key)
            if prior is not None:
                return await _repeated(tx, prior, submission)
        now = await tx.now()
        if isinstance(command, OpenByHand):
            before = None
            latest = await tx.latest_case(command.customer_id)
            facts = Facts(submission.actor, now, key, latest)
        else:
            before = await tx.case(submission.case_id)
            if before is None:
                raise CaseNotFound(submission.case_id)
            _check_version(submission.expected_version, before)
            facts = await _facts(tx, submission, before, now)
        events = decide(command, before, facts, rules)
        state = await _append(tx, before, events, rules.sla, trends, submission.traceparent)
        opened = before is None
        if key is not None:
            remembered = Remembered(state.case_id, state.version, opened, now)
            await tx.remember(submission.actor.name, submission.target, key, submission.name, remembered)
        return CommandResult(state, tuple(events), opened, await tx.signals(state.case_id), at=now)


async def _facts(tx: CommandTransaction, submission: Submission, case: CaseState, now: datetime) -> Facts:
    command, actor, key = submission.command, submission.actor, submission.idempotency_key
    if isinstance(command, NEEDS_HISTORY):
        history = await tx.compensation_history(case, actor.name, now - ONE_DAY)
        return Facts(actor, now, key, history=history)
    if isinstance(command, NEEDS_LATEST):
        return Facts(actor, now, key, await tx.latest_case(case.customer_id) or case)
    return Facts(actor, now, key)


async def _repeated(
    tx: CommandTransaction, prior: tuple[str, Remembered], submission: Submission
) -> CommandResult:
    name, remembered = prior
    if name != submission.name:
        raise InvalidValue(
            f"Idempotency-Key was first used for {name!r}, not {submission.name!r}", "Idempotency-Key"
        )
    state = await tx.case_at(remembered.case_id, remembered.version)
    if state is None:
        raise CaseNotFound(remembered.case_id)
    signals = await tx.signals(state.case_id)
    return CommandResult(state, (), remembered.opened, signals, repeated=True, at=remembered.at)


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
    result = LandCompensationResult(request_id, settled, detail)
    await run_command(Submission(result, BILLING, case_id, traceparent=traceparent), store, CommandRules(sla))
