"""The one registry of what the store holds: every event type with its class and schema version, the case
snapshot with its version, and the upcasters that bring a shape stored by an older release to today's on read.

An event type is registered by its class in the `CaseEvent` union (events.py); everything else that lists
event types (the outgoing mapping, the schema export, the readers and writers of the log) derives from
`EVENT_CLASSES` here. A shape's version is 1 plus the number of upcasters registered for it: changing what a
type stores means writing its upcaster from the version before, and that registration is what makes the
writers store the next version. Versions are stored beside the JSON (events.schema_version,
cases.state_version), never inside it: the stored event is also the outgoing CloudEvent's data as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Final, Generic, TypeVar, get_args

from pydantic import TypeAdapter, ValidationError

from service.domain.case import CASE_STATE, CaseState
from service.domain.events import CaseEvent
from service.domain.incidents import (
    INCIDENT_EVENTS,
    IncidentDeclared,
    IncidentDismissed,
    IncidentEvent,
    IncidentProposed,
)
from service.domain.personal import CUSTOMER_ID, Path, personal_paths
from service.domain.trends import TrendDetected

T = TypeVar("T")
Upcast = Callable[[dict[str, Any]], dict[str, Any]]
"""Reads one version of a stored shape as a JSON object, returns it in the next version's shape."""


class UnreadableEvent(ValueError):
    """A stored event or snapshot this build cannot read: a type it does not know, a version newer than it
    writes, or JSON its schema refuses. The message names the type, the version and the fields, never values."""


@dataclass(frozen=True)
class StoredShape(Generic[T]):
    """One stored shape: how to validate it, and how each older version becomes the next one."""

    name: str
    adapter: TypeAdapter[T]
    upcasters: Mapping[int, Upcast] = field(default_factory=dict)  # version read -> its successor's shape

    def __post_init__(self) -> None:
        gaps = sorted(set(range(1, len(self.upcasters) + 1)) ^ set(self.upcasters))
        if gaps:
            raise ValueError(f"{self.name}: the upcasters must read versions 1, 2, … without gaps: {gaps}")

    @cached_property  # asked several times for every case and event the intake writes
    def version(self) -> int:
        """The version this build writes: 1 plus one for every upcaster."""
        return len(self.upcasters) + 1

    def upcast(self, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """A stored JSON object of an older version in the current version's shape."""
        self._check(version)
        for step in range(version, self.version):
            data = self.upcasters[step](data)
        return data

    def read(self, version: int, text: str | bytes) -> T:
        """The stored JSON text of any version this build knows, validated as today's value."""
        self._check(version)
        try:
            if version == self.version:  # the hot path: no parse but the validator's own
                return self.adapter.validate_json(text)
            return self.adapter.validate_json(json.dumps(self.upcast(version, _object(self, text))))
        except ValidationError as error:
            raise UnreadableEvent(f"{self.name} (schema version {version}): {_reason(error)}") from None

    def current_json(self, version: int, text: str) -> str:
        """The stored JSON text in the current version's shape (itself when it is current)."""
        if version == self.version:
            return text
        return json.dumps(self.upcast(version, _object(self, text)), separators=(",", ":"))

    def _check(self, version: int) -> None:
        if not 1 <= version <= self.version:
            raise UnreadableEvent(
                f"{self.name} is stored at schema version {version}; this build reads 1 to {self.version}"
            )


def _object(shape: StoredShape[Any], text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise UnreadableEvent(f"{shape.name}: the stored data is not valid JSON") from None
    if not isinstance(data, dict):
        raise UnreadableEvent(f"{shape.name}: the stored data is not a JSON object")
    return data


def _reason(error: ValidationError) -> str:
    """Where and why validation failed, without the input values (customer text never reaches a log)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc']) or 'data'}: {detail['msg']}"
        for detail in error.errors(include_url=False, include_input=False, include_context=False)
    )


def stored_type(event_class: type[Any]) -> str:
    """The type an event class is stored under: the default of its `type` field."""
    default = next(f.default for f in fields(event_class) if f.name == "type")
    assert isinstance(default, str), event_class
    return default


def _classes() -> dict[str, type[Any]]:
    union, _ = get_args(CaseEvent)  # Annotated[A | B | …, discriminator]
    return {stored_type(cls): cls for cls in (*get_args(union), TrendDetected, *INCIDENT_EVENTS)}


EVENT_CLASSES: Final[Mapping[str, type[Any]]] = _classes()
"""Every event type the log holds, stored type -> class: the cases' events, the trend event, the incidents'."""

EVENT_UPCASTERS: Final[Mapping[tuple[str, int], Upcast]] = {}
"""(stored type, version read) -> the upcaster to the next version. None yet: every type is at version 1.

SQL that reads inside stored JSON sees the stored shapes, not upcast ones: the compensation lookup's index on
data->>'request_id' (migration 004) needs every version of case.compensation_requested to keep request_id."""

SNAPSHOT_UPCASTERS: Final[Mapping[int, Upcast]] = {}
"""Case snapshot version read -> the upcaster to the next version. None yet: snapshots are at version 1."""

EVENTS: Final[Mapping[str, StoredShape[Any]]] = {
    name: StoredShape(name, TypeAdapter(cls), {v: up for (t, v), up in EVENT_UPCASTERS.items() if t == name})
    for name, cls in EVENT_CLASSES.items()
}
SNAPSHOT: Final[StoredShape[CaseState]] = StoredShape("case snapshot", CASE_STATE, SNAPSHOT_UPCASTERS)
if EVENT_UPCASTERS.keys() - {(t, v) for t in EVENT_CLASSES for v in EVENTS[t].upcasters}:
    raise ValueError(f"upcasters for types that are not registered: {sorted(EVENT_UPCASTERS)}")


PERSONAL_PATHS: Final[Mapping[str, tuple[Path, ...]]] = {
    name: paths for name, cls in EVENT_CLASSES.items() if (paths := personal_paths(cls))
}
"""Stored type -> where its JSON holds personal free text (the types that hold none are left out)."""
CUSTOMER_ID_PATHS: Final[Mapping[str, tuple[Path, ...]]] = {
    name: paths for name, cls in EVENT_CLASSES.items() if (paths := personal_paths(cls, CUSTOMER_ID))
}
"""Stored type -> where its JSON holds the customer id (what an erasure replaces by the pseudonym)."""
SNAPSHOT_PERSONAL_PATHS: Final[tuple[Path, ...]] = personal_paths(CaseState)
"""Where a case snapshot's JSON holds personal free text."""


def event_shape(type_: str) -> StoredShape[Any]:
    """The registered shape of a stored type; UnreadableEvent for a type this build does not know."""
    shape = EVENTS.get(type_)
    if shape is None:
        raise UnreadableEvent(f"stored event type {type_[:80]!r} is not a registered event type")
    return shape


def read_event(type_: str, version: int, data: str | bytes) -> CaseEvent | TrendDetected | IncidentEvent:
    """A stored event as today's value, whatever version of its type stored it."""
    event: CaseEvent | TrendDetected | IncidentEvent = event_shape(type_).read(version, data)
    return event


def read_case_event(type_: str, version: int, data: str | bytes) -> CaseEvent:
    """A stored case event as today's value (a trend event is not one)."""
    event = read_event(type_, version, data)
    if isinstance(event, TrendDetected | IncidentProposed | IncidentDeclared | IncidentDismissed):
        raise UnreadableEvent(f"stored event type {type_!r} is not a case event")
    return event


def current_event_json(type_: str, version: int, data: str) -> str:
    """A stored event's JSON in its type's current shape; UnreadableEvent if it cannot be brought there."""
    return event_shape(type_).current_json(version, data)


def event_version(type_: str) -> int:
    """The schema version this build writes events of a type at."""
    return event_shape(type_).version
