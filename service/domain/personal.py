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


_PATHS: dict[type[Any], tuple[Path, ...]] = {}
_NESTED: dict[type[Any], tuple[tuple[str, bool], ...]] = {}


def personal_paths(cls: type[Any]) -> tuple[Path, ...]:
    """Every path of a dataclass's JSON that holds personal free text, nested dataclasses and tuples included
    (none for a type that is not a dataclass)."""
    found = _PATHS.get(cls)
    if found is None:
        hints = get_type_hints(cls, include_extras=True) if is_dataclass(cls) else {}
        found = _PATHS[cls] = tuple(
            path for name, hint in hints.items() if name in _field_names(cls) for path in _paths(hint, (name,))
        )
    return found


def _field_names(cls: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _paths(hint: Any, prefix: Path) -> Iterator[Path]:
    origin = get_origin(hint)
    if origin is Annotated:
        if PERSONAL_TEXT in hint.__metadata__:
            yield prefix
            return
        yield from _paths(get_args(hint)[0], prefix)
    elif origin is Union or origin is types.UnionType:
        for member in get_args(hint):
            yield from _paths(member, prefix)
    elif origin is tuple:
        yield from _paths(get_args(hint)[0], (*prefix, "*"))  # tuple[X, ...]: every item
    elif isinstance(hint, type) and is_dataclass(hint):
        yield from ((*prefix, *path) for path in personal_paths(hint))


def _nested(cls: type[Any]) -> tuple[tuple[str, bool], ...]:
    """(field, is the text itself) for each field of a dataclass that holds personal text, itself or below."""
    found = _NESTED.get(cls)
    if found is None:
        found = _NESTED[cls] = tuple(dict.fromkeys((path[0], len(path) == 1) for path in personal_paths(cls)))
    return found


def map_personal(value: T, change: Callable[[str], str]) -> T:
    """A copy of the value with each personal text changed by `change` (the value itself if it holds none)."""
    plan = _nested(type(value))
    if not plan:
        return value
    changes: dict[str, Any] = {}
    for name, is_text in plan:
        held = getattr(value, name)
        if held is None:
            continue
        if is_text:
            changes[name] = change(held)
        elif isinstance(held, tuple):
            changes[name] = tuple(map_personal(item, change) for item in held)
        else:
            changes[name] = map_personal(held, change)
    return replace(value, **changes) if changes else value  # type: ignore[type-var]


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
