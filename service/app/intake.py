"""Use case: apply consumed batches of signals, each in one transaction with its offsets.

A batch is planned from one read snapshot, then recorded; a lost race plans it again from a fresh
snapshot. The next batch may be planned while this one is recorded: it is then planned on top of
this batch's plan, which holds exactly when this batch commits as planned (and is planned again
otherwise), so the database does its writing while Python does its thinking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.app.ports import Clock, IntakeStore, PartitionKey, Sentiment, SignalKey
from service.domain.case import CaseState
from service.domain.errors import ConcurrencyConflict
from service.domain.intake import Applied, IntakePlan, plan_intake
from service.domain.severity import Policy
from service.domain.signals import Signal, SignalKind
from service.domain.sla import SlaPolicy

MAX_CONFLICT_RETRIES = 20


@dataclass(frozen=True)
class IntakeRules:
    policy: Policy
    sla: SlaPolicy
    history_window: timedelta


@dataclass(frozen=True)
class IntakeResult:
    applied: list[Applied]
    duplicates: list[Signal]
    events: int
    conflicts: int  # 0: recorded exactly as first planned


@dataclass(frozen=True)
class PlannedBatch:
    signals: Sequence[Signal]  # as consumed, repeats included
    unique: list[Signal]  # one copy of each, in the order the failures happened
    scores: list[float | None]  # sentiment of each unique complaint
    fresh: list[Signal]  # the unique signals not applied before
    plan: IntakePlan
    on_top_of: IntakePlan | None  # the uncommitted plan of the batch before, if this one assumed it


class SignalIntake:
    def __init__(
        self,
        group: str,
        store: IntakeStore,
        rules: IntakeRules,
        sentiment: Sentiment,
        clock: Clock,
    ) -> None:
        self.group = group
        self.store = store
        self.rules = rules
        self.sentiment = sentiment
        self.clock = clock
        self._recorded: IntakePlan | None = None  # the plan this intake recorded last, exactly as planned

    async def plan(self, signals: Sequence[Signal], after: IntakePlan | None = None) -> PlannedBatch:
        """Classify and decide a batch; `after`: the plan of the batch before, if it may not have committed yet."""
        # A batch mixes partitions and topics: a customer's case should read in failure order wherever
        # one batch can make it so.
        unique = sorted({s.key: s for s in reversed(signals)}.values(), key=lambda s: s.occurred_at)
        scores = [self.sentiment.compound(s.text) if s.kind is SignalKind.COMPLAINT else None for s in unique]
        return await self._plan(signals, unique, scores, after)

    async def record(self, planned: PlannedBatch, next_offsets: Mapping[PartitionKey, int]) -> IntakeResult:
        """Record the plan with the offsets in one transaction; a lost race is planned again and retried.

        A batch planned on top of one that was then recorded differently (it lost a race) is planned again.
        """
        if planned.on_top_of is not None and planned.on_top_of is not self._recorded:
            planned = await self._plan(planned.signals, planned.unique, planned.scores, None)
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                async with self.store.transaction() as tx:
                    await tx.record(planned.plan, self.group, next_offsets)
            except ConcurrencyConflict:
                if attempt == MAX_CONFLICT_RETRIES - 1:
                    raise
                planned = await self._plan(planned.signals, planned.unique, planned.scores, None)
                continue
            plan = self._recorded = planned.plan
            return IntakeResult(
                plan.applied, _duplicates(planned.signals, planned.fresh), len(plan.events), attempt
            )
        raise AssertionError("unreachable")

    async def _plan(
        self,
        signals: Sequence[Signal],
        unique: list[Signal],
        scores: list[float | None],
        after: IntakePlan | None,
    ) -> PlannedBatch:
        rules = self.rules
        async with self.store.snapshot() as view:
            if after is not None and (not after.applied or await view.seen([after.applied[0].signal.key])):
                after = None  # nothing to add, or the batch before is in this snapshot already
            seen = await view.seen([s.key for s in unique]) if unique else set()
            if after is not None:
                seen |= {a.signal.key for a in after.applied}
            fresh = [(s, score) for s, score in zip(unique, scores, strict=True) if s.key not in seen]
            customers = sorted({s.customer_id for s, _ in fresh})
            latest = await view.latest_cases(customers) if customers else {}
            since = min((s.occurred_at for s, _ in fresh), default=self.clock.now()) - rules.history_window
            recent = await view.recent_failures(customers, since) if customers else {}
        if after is not None:
            latest, recent = _on_top_of(after, latest, recent, since)
        plan = plan_intake(
            [s for s, _ in fresh],
            [score for _, score in fresh],
            latest,
            recent,
            rules.policy,
            rules.sla,
            rules.history_window,
            self.clock.now(),
        )
        return PlannedBatch(signals, unique, scores, [s for s, _ in fresh], plan, after)


async def apply_signals(
    signals: Sequence[Signal],
    next_offsets: Mapping[PartitionKey, int],
    group: str,
    store: IntakeStore,
    rules: IntakeRules,
    sentiment: Sentiment,
    clock: Clock,
) -> IntakeResult:
    """Plan and record one batch."""
    intake = SignalIntake(group, store, rules, sentiment, clock)
    return await intake.record(await intake.plan(signals), next_offsets)


def _on_top_of(
    before: IntakePlan,
    latest: Mapping[str, CaseState],
    recent: Mapping[str, Sequence[datetime]],
    since: datetime,
) -> tuple[dict[str, CaseState], dict[str, list[datetime]]]:
    """The snapshot as it will be once the batch before has committed its plan."""
    cases = dict(latest)
    for state in before.cases.values():
        known = cases.get(state.customer_id)
        if known is None or (state.ordinal, state.version) > (known.ordinal, known.version):
            cases[state.customer_id] = state
    failures = {customer: list(times) for customer, times in recent.items()}
    for a in before.applied:
        if a.classification.severity is not None and a.signal.occurred_at >= since:
            failures.setdefault(a.signal.customer_id, []).append(a.signal.occurred_at)
    return cases, failures


def _duplicates(signals: Sequence[Signal], fresh: Sequence[Signal]) -> list[Signal]:
    """Every copy but the one applied: seen before, or repeated inside the batch."""
    unapplied: set[SignalKey] = {s.key for s in fresh}
    duplicates = []
    for s in signals:
        if s.key in unapplied:
            unapplied.discard(s.key)
        else:
            duplicates.append(s)
    return duplicates
