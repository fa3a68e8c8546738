"""What managers do with incidents: declare one by hand for a scope, confirm a proposal, dismiss a false alarm.

Each command is a value; decide_incident is the one dispatch. Managers and owners may; an agent may not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain.errors import InvalidValue, MissingField, NotAllowed, WrongState
from service.domain.incidents import (
    BY_HAND,
    OPEN_STATUSES,
    GroupKey,
    IncidentDeclared,
    IncidentDismissed,
    IncidentEvent,
    IncidentState,
    IncidentStatus,
    incident_id,
)
from service.domain.workflow import RESOLVERS, Actor


@dataclass(frozen=True, slots=True)
class DeclareIncident:
    scope: dict[str, str]  # keys among service, region, category, kind; service or region among them


@dataclass(frozen=True, slots=True)
class ConfirmIncident:
    pass


@dataclass(frozen=True, slots=True)
class DismissIncident:
    reason: str


IncidentCommand = DeclareIncident | ConfirmIncident | DismissIncident


def decide_incident(
    command: IncidentCommand, state: IncidentState | None, actor: Actor, now: datetime
) -> list[IncidentEvent]:
    """The events the command makes on the incident (None: the one a declaration opens)."""
    if actor.role not in RESOLVERS:
        raise NotAllowed(f"role {actor.role} may not act on incidents (manager or owner may)")
    if isinstance(command, DeclareIncident):
        scope = _checked_scope(command.scope)
        opened = incident_id(BY_HAND, tuple(scope.items()), now)
        return [IncidentDeclared(incident_id=opened, at=now, scope=scope, declared_by=actor.name)]
    assert state is not None, "confirm and dismiss act on an incident that exists"
    if state.status not in OPEN_STATUSES:
        raise WrongState(f"the incident is {state.status}: it can no longer be confirmed or dismissed")
    if isinstance(command, ConfirmIncident):
        if state.status is IncidentStatus.DECLARED:
            return []  # declared already: confirming again changes nothing
        return [
            IncidentDeclared(
                incident_id=state.incident_id,
                at=now,
                scope=state.scope,
                detection=state.detection,
                declared_by=actor.name,
            )
        ]
    if not command.reason.strip():
        raise MissingField("reason is required", "reason")
    return [
        IncidentDismissed(
            incident_id=state.incident_id,
            at=now,
            scope=state.scope,
            dismissed_by=actor.name,
            reason=command.reason,
        )
    ]


def _checked_scope(scope: dict[str, str]) -> dict[str, str]:
    """The scope in the keys' order (service, region, category, kind): what a rule with those keys names."""
    known = [k.value for k in GroupKey]
    unknown = sorted(set(scope) - set(known))
    if unknown:
        raise InvalidValue(f"scope: {unknown[0]!r} is not one of {', '.join(known)}", "scope")
    if "service" not in scope and "region" not in scope:
        raise MissingField("scope: service or region is required (a scope is a place where something failed)", "scope")
    if any(not v.strip() for v in scope.values()):
        raise InvalidValue("scope: a value is empty", "scope")
    return {k: scope[k] for k in known if k in scope}
