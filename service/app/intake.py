"""Use case: apply one consumed batch of signals in a single transaction, with its offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.app.conflicts import decided_again_on_conflict
from service.app.incidents import link_customers
from service.app.ports import Clock, IntakeStore, IntakeTransaction, PartitionKey, Sentiment
from service.domain.case import CaseIds, evolve
from service.domain.incidents import (
    IncidentDeclared,
    IncidentOpened,
    IncidentPolicy,
    OpenIncident,
    Sighting,
    detect,
    link,
    scope_of,
    scope_text,
    scopes_touched,
)
from service.domain.intake import Applied, IntakePlan, NewEvent, plan_intake
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
        placed = _placed(plan)
        open_incidents = await tx.open_incidents() if placed else {}
        if open_incidents:  # cases of signals in a declared incident's scope join it with their batch
            _link_in_plan(plan, _joining(placed, open_incidents, rules.incidents), clock.now())
        await tx.record(plan, group, next_offsets)
        incidents = await _detect_incidents(tx, placed, open_incidents, rules.incidents, clock) if placed else []
    return plan, [s for s, _ in fresh], incidents


Placed = list[tuple[Applied, Sighting]]


def _placed(plan: IntakePlan) -> Placed:
    """The batch's failures that say where they happened, as detection sees them."""
    return [
        (
            a,
            Sighting(
                a.signal.occurred_at,
                a.signal.customer_id,
                a.signal.kind.value,
                str(a.classification.category),
                a.signal.service,
                a.signal.region,
            ),
        )
        for a in plan.applied
        if a.classification.severity is not None and (a.signal.service or a.signal.region)
    ]


def _joining(placed: Placed, open_incidents: Mapping[str, OpenIncident], policy: IncidentPolicy) -> dict[str, str]:
    """Customer -> the declared incident whose scope their failure falls in (by hand, or through a rule)."""
    declared = {k: o.incident_id for k, o in open_incidents.items() if o.declared}
    by_hand = [o for o in open_incidents.values() if o.declared and o.by_hand]
    joining: dict[str, str] = {}
    for a, sighting in placed:
        found = next((o.incident_id for o in by_hand if o.holds(sighting)), None)
        for rule in policy.surges if found is None else ():
            scope = scope_of(rule, sighting)
            found = declared.get(scope_text(rule.name, scope)) if scope is not None else None
            if found is not None:
                break
        if found is not None:
            joining.setdefault(a.signal.customer_id, found)
    return joining


def _link_in_plan(plan: IntakePlan, joining: Mapping[str, str], now: datetime) -> None:
    """The batch's cases of joining customers join their incident in the same write (an open case, once)."""
    for case_id, state in list(plan.cases.items()):
        incident = joining.get(state.customer_id)
        if incident is None:
            continue
        for event in link(state, incident, now):
            state = evolve(state, event)
            plan.events.append(NewEvent(state.case_id, state.version, event))
        plan.cases[case_id] = state


async def _detect_incidents(
    tx: IntakeTransaction,
    placed: Placed,
    open_incidents: Mapping[str, OpenIncident],
    policy: IncidentPolicy,
    clock: Clock,
) -> list[IncidentOpened]:
    """The scopes this batch's failures fall in, counted with the signals before them (this batch's are
    recorded by now); a crossing opens an incident in the same transaction (a scope another instance opened
    first makes the batch decide again), and the customers whose signals crossed a declared one join it."""
    wanted = scopes_touched(policy, [s for _, s in placed], open_incidents)
    counts = await tx.surge_counts(wanted) if wanted else []
    now = clock.now()
    incidents = [e for c in counts if (e := detect(c, now)) is not None]
    await tx.record_incidents(incidents)
    joining: dict[str, str] = {}
    for e in incidents:
        why = e.detection
        rule = None if why is None else policy.rule(why.rule)
        if isinstance(e, IncidentDeclared) and why is not None and rule is not None:
            for customer in await tx.customers_in_window(rule, tuple(e.scope.items()), why.window_end):
                joining.setdefault(customer, e.incident_id)
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
