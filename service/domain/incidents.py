"""Incidents: many customers failing in one place within minutes is one outage, to be seen and worked as one.

Detection is data. A surge rule groups failure signals by some of `service`, `region`, `category` and the
signal kind (a group's values are its scope), counts the distinct customers of each scope within a sliding
window ending at its latest signal, and crosses when that count reaches the rule's floor and a multiple of
the scope's own baseline: the mean, over the baseline period before the window, of distinct customers per
window (fixed windows of the rule's length; a scope with no signal in the period has no baseline, and the
floor alone decides). A crossing proposes or declares an incident; a scope has one open incident at most.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from service.domain.case import CaseState, CaseStatus
from service.domain.events import IncidentLinked
from service.domain.surge_trail import SurgeTrail


class GroupKey(StrEnum):
    SERVICE = "service"
    REGION = "region"
    CATEGORY = "category"
    KIND = "kind"  # the signal kind: complaint, nps, review, callback, ticket


class Crossing(StrEnum):
    PROPOSE = "propose"  # a manager confirms or dismisses it
    DECLARE = "declare"  # declared at once


RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class SurgeRule(BaseModel):
    """One way of recognising an outage; every field is named in the incident policy file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    group_by: tuple[GroupKey, ...] = Field(min_length=1, max_length=4)
    window: timedelta = Field(ge=timedelta(minutes=1), le=timedelta(hours=24))
    min_customers: int = Field(ge=2, le=1_000_000, description="distinct customers in the window, at least")
    baseline_multiple: float = Field(ge=0, le=1_000, description="times the scope's baseline; 0: the floor alone")
    baseline_period: timedelta = Field(default=timedelta(days=7), le=timedelta(days=90))
    on_crossing: Crossing = Crossing.DECLARE

    @field_validator("group_by")
    @classmethod
    def _grouped_where(cls, keys: tuple[GroupKey, ...]) -> tuple[GroupKey, ...]:
        if len(set(keys)) != len(keys):
            raise ValueError("a key is named twice")
        if GroupKey.SERVICE not in keys and GroupKey.REGION not in keys:
            raise ValueError("must include service or region (a scope is a place where something failed)")
        return keys

    @model_validator(mode="after")
    def _period_holds_windows(self) -> SurgeRule:
        if self.baseline_period < self.window:
            raise ValueError("baseline_period: must be at least the window")
        return self

    @property
    def baseline_windows(self) -> int:
        """How many windows the baseline period holds (the baseline's divisor)."""
        return self.baseline_period // self.window


DEFAULT_SURGE = SurgeRule(
    name="service-region",
    group_by=(GroupKey.SERVICE, GroupKey.REGION),
    window=timedelta(minutes=15),
    min_customers=20,
    baseline_multiple=5,
    baseline_period=timedelta(days=7),
)
MAX_RULES = 20


class IncidentPolicy(BaseModel):
    """The incident policy (RECOVERY_INCIDENT_POLICY_FILE); without one, DEFAULT_SURGE alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None = Field(default=None, max_length=64)
    surges: tuple[SurgeRule, ...] = Field(default=(DEFAULT_SURGE,), max_length=MAX_RULES)

    @field_validator("surges")
    @classmethod
    def _names_unique(cls, rules: tuple[SurgeRule, ...]) -> tuple[SurgeRule, ...]:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError("two rules have the same name")
        return rules

    def rule(self, name: str) -> SurgeRule | None:
        return next((r for r in self.surges if r.name == name), None)


Scope = tuple[tuple[str, str], ...]
"""((key, value), …) in the rule's group_by order, e.g. (("service", "broadband"), ("region", "north"))."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """A failure signal as detection sees it: when, whose, and the values it can be grouped by."""

    at: datetime
    customer_id: str
    kind: str
    category: str
    service: str | None
    region: str | None

    def value(self, key: GroupKey) -> str | None:
        if key is GroupKey.SERVICE:
            return self.service
        if key is GroupKey.REGION:
            return self.region
        return self.category if key is GroupKey.CATEGORY else self.kind


def scope_of(rule: SurgeRule, sighting: Sighting) -> Scope | None:
    """The sighting's scope under the rule; None when it lacks one of the rule's keys."""
    pairs = []
    for key in rule.group_by:
        value = sighting.value(key)
        if value is None:
            return None
        pairs.append((key.value, value))
    return tuple(pairs)


def scope_text(rule: str, scope: Scope) -> str:
    """One text per (rule, scope), unambiguous whatever the values hold: what the store keeps one open incident
    for."""
    return json.dumps([rule, [list(p) for p in scope]], ensure_ascii=False, separators=(",", ":"))


_INCIDENTS = uuid.UUID("5d6c1a52-8a52-4f8e-9d6e-3c1f0c2b7a41")


def incident_id(rule: str, scope: Scope, since: datetime) -> str:
    """A stable id: the same crossing decided again (a retried batch, a replay) names the same incident."""
    return str(uuid.uuid5(_INCIDENTS, f"{scope_text(rule, scope)}|{since.isoformat()}"))


def incident_stream(incident: str) -> str:
    return f"incident/{incident}"


BY_HAND = "by-hand"
"""The rule name an incident a manager declared carries in its scope key."""


def scope_key(event: IncidentEvent) -> str:
    """What one open incident is kept for: its rule (or BY_HAND) and its scope."""
    detection = getattr(event, "detection", None)
    rule = detection.rule if detection is not None else BY_HAND
    return scope_text(rule, tuple(event.scope.items()))


def crossed(rule: SurgeRule, customers: int, baseline: float | None) -> bool:
    """The count reaches the floor and, when the scope has a baseline, the rule's multiple of it."""
    if customers < rule.min_customers:
        return False
    if baseline is None or rule.baseline_multiple == 0:
        return True
    return customers >= rule.baseline_multiple * baseline


def baseline_of(
    rule: SurgeRule, earlier: Iterable[tuple[datetime, str]], window_start: datetime
) -> float | None:
    """The mean distinct customers per window over the baseline period before `window_start`; None when no
    sighting lies in it. The period is cut in fixed windows of the rule's length, counted back from the start."""
    period_start = window_start - rule.baseline_windows * rule.window
    seen: set[tuple[int, str]] = set()
    for at, customer in earlier:
        if period_start <= at < window_start:
            seen.add(((at - period_start) // rule.window, customer))
    if not seen:
        return None
    return len(seen) / rule.baseline_windows


def customers_in_window(
    sightings: Iterable[tuple[datetime, str]], end: datetime, window: timedelta
) -> set[str]:
    """The distinct customers with a sighting in (end - window, end]."""
    return {customer for at, customer in sightings if end - window < at <= end}


# --- the incident stream -------------------------------------------------------------------------------------


class IncidentStatus(StrEnum):
    PROPOSED = "proposed"
    DECLARED = "declared"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = frozenset({IncidentStatus.PROPOSED, IncidentStatus.DECLARED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    """Why a rule fired: its floor and multiple, the count and the baseline, the window counted."""

    rule: str
    customers: int  # distinct customers in the window when it crossed
    baseline: float | None  # mean distinct customers per window before it; None: no history, the floor decided
    min_customers: int
    baseline_multiple: float
    window_minutes: int
    window_start: datetime  # the window is (window_start, window_end]
    window_end: datetime  # the latest signal counted


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentProposed:
    """A surge rule that proposes crossed: a manager confirms (declares) or dismisses it."""

    type: Literal["incident.proposed"] = "incident.proposed"
    incident_id: str
    at: datetime
    scope: dict[str, str]
    detection: Detection


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDeclared:
    """The incident is declared: by a rule that declares (detection), or by a manager (declared_by)."""

    type: Literal["incident.declared"] = "incident.declared"
    incident_id: str
    at: datetime
    scope: dict[str, str]
    detection: Detection | None = None
    declared_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDismissed:
    """A manager found the incident is not one (a false alarm): its cases stay as they are, nothing more links."""

    type: Literal["incident.dismissed"] = "incident.dismissed"
    incident_id: str
    at: datetime
    scope: dict[str, str]
    dismissed_by: str
    reason: str


IncidentOpened = IncidentProposed | IncidentDeclared  # what a surge rule's crossing makes
IncidentEvent = IncidentProposed | IncidentDeclared | IncidentDismissed
INCIDENT_EVENTS: tuple[type[IncidentProposed], type[IncidentDeclared], type[IncidentDismissed]] = (
    IncidentProposed,
    IncidentDeclared,
    IncidentDismissed,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentState:
    incident_id: str
    status: IncidentStatus
    scope: dict[str, str]
    opened_at: datetime
    detection: Detection | None
    declared_at: datetime | None
    declared_by: str | None
    version: int
    dismissed_at: datetime | None = None
    dismissed_by: str | None = None
    reason: str | None = None

    @property
    def scope_key(self) -> str:
        return scope_text(self.detection.rule if self.detection else BY_HAND, tuple(self.scope.items()))


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """An incident proposed or declared, as the intake needs it: which, and whether cases link to it yet."""

    incident_id: str
    status: IncidentStatus
    by_hand: bool = False  # declared by a manager: its scope is matched as given, not through a rule
    scope: Scope = ()

    @property
    def declared(self) -> bool:
        return self.status is IncidentStatus.DECLARED

    def holds(self, sighting: Sighting) -> bool:
        """A sighting in a by-hand incident's scope: it has each of the scope's values."""
        return self.by_hand and all(sighting.value(GroupKey(k)) == v for k, v in self.scope)


def link(case: CaseState, incident: str, now: datetime, actor: str | None = None) -> list[IncidentLinked]:
    """The case joins the incident, unless it is part of one already or is no longer open."""
    if case.incident_id is not None or case.status is not CaseStatus.OPEN:
        return []
    return [IncidentLinked(case_id=case.case_id, at=now, incident_id=incident, actor=actor)]


INCIDENT_STATE: TypeAdapter[IncidentState] = TypeAdapter(IncidentState)  # the incidents table's state column


def evolve_incident(state: IncidentState | None, event: IncidentEvent) -> IncidentState:
    if state is None:
        assert not isinstance(event, IncidentDismissed), "an incident starts proposed or declared"
        declared = isinstance(event, IncidentDeclared)
        return IncidentState(
            incident_id=event.incident_id,
            status=IncidentStatus.DECLARED if declared else IncidentStatus.PROPOSED,
            scope=dict(event.scope),
            opened_at=event.at,
            detection=event.detection,
            declared_at=event.at if declared else None,
            declared_by=event.declared_by if isinstance(event, IncidentDeclared) else None,
            version=1,
        )
    if isinstance(event, IncidentDeclared):  # a proposal confirmed
        return replace(
            state,
            status=IncidentStatus.DECLARED,
            declared_at=event.at,
            declared_by=event.declared_by,
            version=state.version + 1,
        )
    if not isinstance(event, IncidentDismissed):  # proposed again: nothing changes but the version
        return replace(state, version=state.version + 1)
    return replace(
        state,
        status=IncidentStatus.DISMISSED,
        dismissed_at=event.at,
        dismissed_by=event.dismissed_by,
        reason=event.reason,
        version=state.version + 1,
    )


# --- detection ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurgeCount:
    """A scope's count at the end of its window, as the store (or a replay) counted it."""

    rule: SurgeRule
    scope: Scope
    customers: int
    baseline: float | None
    window_end: datetime


def count_surge(
    rule: SurgeRule, scope: Scope, end: datetime, sightings: Iterable[tuple[datetime, str]]
) -> SurgeCount:
    """The scope's count for the window ending at `end`, from its sightings (time, customer): the baseline is
    only worked out when the floor is reached (it can only matter then)."""
    pairs = list(sightings)
    customers = len(customers_in_window(pairs, end, rule.window))
    start = end - rule.window
    base = baseline_of(rule, pairs, start + _TICK) if customers >= rule.min_customers else None
    return SurgeCount(rule, scope, customers, base, end)


def detect(count: SurgeCount, now: datetime) -> IncidentOpened | None:
    """The incident a count makes, when it crosses its rule (the caller knows the scope has none open)."""
    rule = count.rule
    if not crossed(rule, count.customers, count.baseline):
        return None
    start = count.window_end - rule.window
    why = Detection(
        rule=rule.name,
        customers=count.customers,
        baseline=count.baseline,
        min_customers=rule.min_customers,
        baseline_multiple=rule.baseline_multiple,
        window_minutes=rule.window // timedelta(minutes=1),
        window_start=start,
        window_end=count.window_end,
    )
    opened = incident_id(rule.name, count.scope, start)
    if rule.on_crossing == Crossing.DECLARE:  # (a copied rule may hold the plain string)
        return IncidentDeclared(incident_id=opened, at=now, scope=dict(count.scope), detection=why)
    return IncidentProposed(incident_id=opened, at=now, scope=dict(count.scope), detection=why)


def scopes_touched(
    policy: IncidentPolicy, sightings: Iterable[Sighting], open_scopes: Collection[str]
) -> list[tuple[SurgeRule, Scope, datetime]]:
    """Each (rule, scope) the sightings fall in that has no open incident, with the latest sighting's time:
    where the window to count ends."""
    touched: dict[tuple[str, Scope], tuple[SurgeRule, datetime]] = {}
    for s in sightings:
        for rule in policy.surges:
            scope = scope_of(rule, s)
            if scope is not None:
                key = (rule.name, scope)
                _, latest = touched.get(key, (rule, s.at))
                touched[key] = (rule, max(latest, s.at))
    return [
        (rule, scope, end)
        for (name, scope), (rule, end) in touched.items()
        if scope_text(name, scope) not in open_scopes
    ]


def replay(
    policy: IncidentPolicy,
    sightings: Sequence[Sighting],
    open_scopes: Iterable[str] = (),
    since: datetime | None = None,
) -> list[IncidentOpened]:
    """What the rules fire over these sightings in time order (the backtest): each sighting ends a window of
    its scope, which is counted with the sightings before it; a scope fires once (its incident stays open).
    The baseline of a window is taken from the sightings before it, so a replay must start a baseline period
    before the span it reports on to see what live detection saw; the sightings before `since` only fill
    windows and baselines (their own windows lack that history, so they fire nothing)."""
    walk = Replay(policy, open_scopes, since)
    return [event for s in sorted(sightings, key=lambda x: x.at) for event in walk.see(s)]


class Replay:
    """`replay` one sighting at a time, for sightings read in time order (the backtest streams them); it
    keeps, per scope, only what the baseline can see."""

    def __init__(
        self, policy: IncidentPolicy, open_scopes: Iterable[str] = (), since: datetime | None = None
    ) -> None:
        self._policy = policy
        self._done = set(open_scopes)
        self._since = since
        self._trails: dict[tuple[str, Scope], tuple[SurgeTrail, str]] = {}
        self._last: datetime | None = None

    def see(self, s: Sighting) -> list[IncidentOpened]:
        """What the sighting makes fire: it ends a window of its scope under each rule."""
        if self._last is not None and s.at < self._last:
            raise ValueError(f"a sighting at {s.at.isoformat()} after one at {self._last.isoformat()}")
        self._last = s.at
        fired = []
        for rule in self._policy.surges:
            scope = scope_of(rule, s)
            if scope is not None and (event := self._count(rule, scope, s)) is not None:
                fired.append(event)
        return fired

    def _count(self, rule: SurgeRule, scope: Scope, s: Sighting) -> IncidentOpened | None:
        if (rule.name, scope) not in self._trails:
            trail = SurgeTrail(rule.window, rule.baseline_windows)
            self._trails[(rule.name, scope)] = trail, scope_text(rule.name, scope)
        trail, text = self._trails[(rule.name, scope)]
        trail.add(s.at, s.customer_id)
        if (self._since is not None and s.at < self._since) or text in self._done:
            return None
        customers = trail.window_customers()
        # The baseline is at least the trail's bound of its pairs per window: short of that multiple, the
        # window cannot cross, and needs no exact count.
        at_least = rule.baseline_multiple * (trail.pairs_at_least() / rule.baseline_windows)
        if customers < rule.min_customers or customers < at_least:
            return None
        event = detect(count_surge(rule, scope, s.at, trail.seen), s.at)
        if event is not None:
            self._done.add(text)
        return event


# The window is (end - window, end]: the baseline period ends where the window begins, just after end - window.
_TICK = timedelta(microseconds=1)
