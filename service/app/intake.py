"""Use case: apply one consumed batch of signals in a single transaction, with its offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from service.app.conflicts import decided_again_on_conflict
from service.app.incidents import link_customers
from service.app.ports import Clock, IntakeStore, IntakeTransaction, PartitionKey, Sentiment
from service.domain.case import CaseIds
from service.domain.incidents import (
    IncidentDeclared,
    IncidentOpened,
    IncidentPolicy,
    Sighting,
    detect,
    scope_key,
    scope_of,
    scope_text,
    scopes_touched,
)
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
    incidents: tuple[IncidentOpened, ...] = ()  # incidents this batch's signals made cross their rule

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
) -> tuple[IntakePlan, list[Signal], list[IncidentOpened]]:
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
) -> list[IncidentOpened]:
    """The scopes this batch's failures fall in, counted with the signals before them; a crossing opens an
    incident in the same transaction (a scope another instance opened first makes the batch decide again).
    The cases of signals in a declared incident's scope join it, and so do the cases of the customers whose
    signals made a new incident cross."""
    placed = [
        (a, Sighting(
            a.signal.occurred_at,
            a.signal.customer_id,
            a.signal.kind.value,
            str(a.classification.category),
            a.signal.service,
            a.signal.region,
        ))
        for a in plan.applied
        if a.classification.severity is not None and (a.signal.service or a.signal.region)
    ]
    if not placed:
        return []
    open_incidents = await tx.open_incidents()
    wanted = scopes_touched(policy, [s for _, s in placed], open_incidents)
    counts = await tx.surge_counts(wanted) if wanted else []
    now = clock.now()
    incidents = [e for c in counts if (e := detect(c, now)) is not None]
    await tx.record_incidents(incidents)
    declared = {k: o.incident_id for k, o in open_incidents.items() if o.declared}
    joining: dict[str, str] = {}  # customer -> incident
    for e in incidents:
        if isinstance(e, IncidentDeclared) and e.detection is not None:
            declared[scope_key(e)] = e.incident_id
            rule = policy.rule(e.detection.rule)
            if rule is not None:
                crossed = tuple(e.scope.items())
                for customer in await tx.customers_in_window(rule, crossed, e.detection.window_end):
                    joining.setdefault(customer, e.incident_id)
    by_hand = [o for o in open_incidents.values() if o.declared and o.by_hand]
    for a, sighting in placed:
        held = next((o.incident_id for o in by_hand if o.holds(sighting)), None)
        if held is not None:
            joining.setdefault(a.signal.customer_id, held)
            continue
        for rule in policy.surges:
            scope = scope_of(rule, sighting)
            found = declared.get(scope_text(rule.name, scope)) if scope is not None else None
            if found is not None:
                joining.setdefault(a.signal.customer_id, found)
                break
    await link_customers(tx, joining, now)
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
