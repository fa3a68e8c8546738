"""Use case: apply one consumed batch of signals in a single transaction, with its offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from service.app.conflicts import decided_again_on_conflict
from service.app.ports import Clock, IntakeStore, IntakeTransaction, PartitionKey, Sentiment
from service.domain.case import CaseIds
from service.domain.incidents import IncidentEvent, IncidentPolicy, Sighting, detect, scopes_touched
from service.domain.intake import Applied, IntakePlan, plan_intake
from service.domain.severity import Policy
from service.domain.signals import Signal, SignalKind
from service.domain.sla import SlaPolicy


@dataclass(frozen=True)
class IntakeRules:
    policy: Policy
    sla: SlaPolicy
    history_window: timedelta
    case_ids: CaseIds
    incidents: IncidentPolicy = IncidentPolicy()


@dataclass(frozen=True)
class IntakeResult:
    applied: list[Applied]
    duplicates: list[Signal]
    events: int
    conflicts: int
    incidents: tuple[IncidentEvent, ...] = ()  # incidents this batch's signals made cross their rule

    @classmethod
    def combined(cls, parts: Sequence[IntakeResult]) -> IntakeResult:
        """One result for a batch applied in several parts."""
        return cls(
            [a for p in parts for a in p.applied],
            [d for p in parts for d in p.duplicates],
            sum(p.events for p in parts),
            sum(p.conflicts for p in parts),
            tuple(i for p in parts for i in p.incidents),
        )


async def apply_signals(
    signals: Sequence[Signal],
    next_offsets: Mapping[PartitionKey, int],
    group: str,
    store: IntakeStore,
    rules: IntakeRules,
    sentiment: Sentiment,
    clock: Clock,
) -> IntakeResult:
    """Classify and apply a batch; offsets move in the same transaction, a lost race decides again."""
    # One copy of each signal, in the order the failures happened: a batch mixes partitions and topics,
    # and a customer's case should read in failure order wherever one batch can make it so.
    unique = sorted({s.key: s for s in reversed(signals)}.values(), key=lambda s: s.occurred_at)
    scores = [sentiment.compound(s.text) if s.kind is SignalKind.COMPLAINT else None for s in unique]
    (plan, fresh, incidents), lost = await decided_again_on_conflict(
        lambda: _apply_once(unique, scores, next_offsets, group, store, rules, clock)
    )
    return IntakeResult(plan.applied, _duplicates(signals, fresh), len(plan.events), lost, tuple(incidents))


async def _apply_once(
    signals: Sequence[Signal],
    scores: Sequence[float | None],
    next_offsets: Mapping[PartitionKey, int],
    group: str,
    store: IntakeStore,
    rules: IntakeRules,
    clock: Clock,
) -> tuple[IntakePlan, list[Signal], list[IncidentEvent]]:
    async with store.transaction() as tx:
        seen = await tx.seen([s.key for s in signals]) if signals else set()
        fresh = [(s, score) for s, score in zip(signals, scores, strict=True) if s.key not in seen]
        customers = sorted({s.customer_id for s, _ in fresh})
        latest = await tx.latest_cases(customers) if customers else {}
        since = min((s.occurred_at for s, _ in fresh), default=clock.now()) - rules.history_window
        recent = await tx.recent_failures(customers, since) if customers else {}
        plan = plan_intake(
            [s for s, _ in fresh],
            [score for _, score in fresh],
            latest,
            recent,
            rules.policy,
            rules.sla,
            rules.history_window,
            clock.now(),
            rules.case_ids,
        )
        await tx.record(plan, group, next_offsets)
        incidents = await _detect_incidents(tx, plan, rules.incidents, clock)
    return plan, [s for s, _ in fresh], incidents


async def _detect_incidents(
    tx: IntakeTransaction, plan: IntakePlan, policy: IncidentPolicy, clock: Clock
) -> list[IncidentEvent]:
    """The scopes this batch's failures fall in, counted with the signals before them; a crossing opens an
    incident in the same transaction (a scope another instance opened first makes the batch decide again)."""
    sightings = [
        Sighting(
            a.signal.occurred_at,
            a.signal.customer_id,
            a.signal.kind.value,
            str(a.classification.category),
            a.signal.service,
            a.signal.region,
        )
        for a in plan.applied
        if a.classification.severity is not None and (a.signal.service or a.signal.region)
    ]
    if not sightings:
        return []
    wanted = scopes_touched(policy, sightings, await tx.open_incident_scopes())
    counts = await tx.surge_counts(wanted) if wanted else []
    now = clock.now()
    incidents = [e for c in counts if (e := detect(c, now)) is not None]
    await tx.record_incidents(incidents)
    return incidents


def _duplicates(signals: Sequence[Signal], fresh: Sequence[Signal]) -> list[Signal]:
    """Every copy but the one applied: seen before, or repeated inside the batch."""
    unapplied = {s.key for s in fresh}
    duplicates = []
    for s in signals:
        if s.key in unapplied:
            unapplied.discard(s.key)
        else:
            duplicates.append(s)
    return duplicates
