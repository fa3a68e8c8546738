"""Which stored fields are a customer's personal data: one marker on the field's annotation, read by everything
that treats such fields apart.

`PersonalText` marks free text that is personal data: the customer's own words (a signal's text, the case's
summary) and what staff write about them (notes, follow-up notes, reasons, prevention actions). The store seals
each such text with its customer's key and opens it on read (adapters/postgres/sealing.py), the outgoing relay
leaves it out unless configured to publish it, and the schema export marks it. `CustomerId` marks the customer
id, personal data that is not free text: marked in the schemas, kept as it is.

Nothing here knows about encryption: `map_personal` changes every personal text of a value by a function it is
given, and `personal_paths` says where those texts sit in a type's JSON.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

T = TypeVar("T")
Path = tuple[str, ...]
"""Where a text sits in a value's JSON: field names, "*" for every item of an array."""

PERSONAL_DATA_KEYWORD = "x-personal-data"
FREE_TEXT_KEYWORD = "x-free-text"


@dataclass(frozen=True, slots=True)
class PersonalData:
    """The annotation that marks a field as personal data; free text is sealed, redacted and erasable."""

    free_text: bool

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema[PERSONAL_DATA_KEYWORD] = True
        if self.free_text:
            schema[FREE_TEXT_KEYWORD] = True
        return schema


PERSONAL_TEXT = PersonalData(free_text=True)
CUSTOMER_ID = PersonalData(free_text=False)
PersonalText = Annotated[str, PERSONAL_TEXT]
CustomerId = Annotated[str, CUSTOMER_ID]


ERASED_TEXT = "[erased]"
"""What every personal text of an erased customer reads as, and what a text sealed under a destroyed key opens to."""

_PATHS: dict[tuple[type[Any], PersonalData], tuple[Path, ...]] = {}
_NESTED: dict[type[Any], tuple[tuple[str, bool], ...]] = {}
_SLOTS: dict[type[Any], tuple[str, ...]] = {}


def personal_paths(cls: type[Any], marker: PersonalData = PERSONAL_TEXT) -> tuple[Path, ...]:
    """Every path of a dataclass's JSON that holds personal free text (or, given CUSTOMER_ID, the customer id),
    nested dataclasses and tuples included (none for a type that is not a dataclass)."""
    found = _PATHS.get((cls, marker))
    if found is None:
        hints = get_type_hints(cls, include_extras=True) if is_dataclass(cls) else {}
        found = _PATHS[cls, marker] = tuple(
            path
            for name, hint in hints.items()
            if name in _field_names(cls)
            for path in _paths(hint, (name,), marker)
        )
    return found


def _field_names(cls: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _paths(hint: Any, prefix: Path, marker: PersonalData) -> Iterator[Path]:
    origin = get_origin(hint)
    if origin is Annotated:
        if marker in hint.__metadata__:
            yield prefix
            return
        yield from _paths(get_args(hint)[0], prefix, marker)
    elif origin is Union or origin is types.UnionType:
        for member in get_args(hint):
            yield from _paths(member, prefix, marker)
    elif origin is tuple:
        yield from _paths(get_args(hint)[0], (*prefix, "*"), marker)  # tuple[X, ...]: every item
    elif isinstance(hint, type) and is_dataclass(hint):
        yield from ((*prefix, *path) for path in personal_paths(hint, marker))


def _nested(cls: type[Any]) -> tuple[tuple[str, bool], ...]:
    """(field, is the text itself) for each field of a dataclass that holds personal text, itself or below."""
    found = _NESTED.get(cls)
    if found is None:
        found = _NESTED[cls] = tuple(dict.fromkeys((path[0], len(path) == 1) for path in personal_paths(cls)))
    return found


def map_personal(value: T, change: Callable[[str], str]) -> T:
    """A copy of the value with each personal text changed by `change`; the value itself when that changes
    nothing (it holds no text, or `change` gives every text back as it is)."""
    plan = _nested(type(value))
    if not plan:
        return value
    changes: dict[str, Any] = {}
    for name, is_text in plan:
        held = getattr(value, name)
        if not held:  # None, an empty tuple or text
            continue
        changed: Any
        if is_text:
            changed = change(held)
        elif isinstance(held, tuple):
            items = [map_personal(item, change) for item in held]
            changed = held if all(a is b for a, b in zip(items, held, strict=True)) else tuple(items)
        else:
            changed = map_personal(held, change)
        if changed is not held:
            changes[name] = changed
    return _with(value, changes) if changes else value


def _with(value: T, changes: dict[str, Any]) -> T:
    """`dataclasses.replace` without its per-call introspection and `__init__`, for the slotted dataclasses of
    the domain (the intake seals every new text of a batch through here); `replace` for any other."""
    cls = type(value)
    names = _SLOTS.get(cls)
    if names is None:
        names = _SLOTS[cls] = tuple(f.name for f in fields(cls)) if "__slots__" in cls.__dict__ else ()  # type: ignore[arg-type]
    if not names:
        return replace(value, **changes)  # type: ignore[type-var]
    copied = object.__new__(cls)
    for name in names:
        object.__setattr__(copied, name, changes[name] if name in changes else getattr(value, name))
    return copied


def map_personal_json(data: Any, paths: tuple[Path, ...], change: Callable[[str], str | None]) -> None:
    """Change, in place, each text of a JSON object that sits at one of the paths (absent paths are skipped)."""
    for path in paths:
        _change_at(data, path, change)


def _change_at(node: Any, path: Path, change: Callable[[str], str | None]) -> None:
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else ():
            _change_at(item, rest, change)
        return
    if not isinstance(node, dict) or node.get(head) is None:
        return
    if rest:
        _change_at(node[head], rest, change)
    elif isinstance(node[head], str):
        node[head] = change(node[head])
