"""Personal data in the published schemas: the marks (x-personal-data, x-free-text) that `PersonalData`
(domain/personal.py) puts on a field's own schema, lifted to the property that holds it, and listed per message
for the AsyncAPI document.

A property marked x-free-text is personal free text: on the outgoing topics it is null unless the service
publishes free text (RECOVERY_PUBLISH_FREE_TEXT), so its outgoing schema allows null.
"""

from __future__ import annotations

from typing import Any

from service.domain.personal import FREE_TEXT_KEYWORD, PERSONAL_DATA_KEYWORD

_BOUNDS = ("type", "maxLength", "minLength")


def personal_marked(schema: dict[str, Any], outgoing: bool = True) -> dict[str, Any]:
    """The schema with each personal property marked at its own level; outgoing, each free-text one may be
    null: that is how it goes out unless the service publishes free text."""
    for node in (schema, *schema.get("$defs", {}).values()):
        for name, prop in node.get("properties", {}).items():
            members = prop.get("anyOf", [prop])
            if any(m.get(PERSONAL_DATA_KEYWORD) for m in members):
                prop[PERSONAL_DATA_KEYWORD] = True
            if any(m.get(FREE_TEXT_KEYWORD) for m in members):
                prop[FREE_TEXT_KEYWORD] = True
                if outgoing:
                    node["properties"][name] = _nullable(prop)
    return schema


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in prop:
        members = [{k: v for k, v in m.items() if not k.startswith("x-")} for m in prop["anyOf"]]
        outer = {k: v for k, v in prop.items() if k != "anyOf"}
    else:
        members = [{k: v for k, v in prop.items() if k in _BOUNDS}]
        outer = {k: v for k, v in prop.items() if k not in _BOUNDS}
    if {"type": "null"} not in members:
        members.append({"type": "null"})
    return {**outer, "anyOf": members, PERSONAL_DATA_KEYWORD: True, FREE_TEXT_KEYWORD: True}


def personal_fields(schema: dict[str, Any]) -> list[str]:
    """The dotted paths of a schema document's personal properties ("signal.text"; "[]" for array items)."""
    return sorted(set(_walk(schema, schema, "", 0)))


def _walk(document: dict[str, Any], node: dict[str, Any], prefix: str, depth: int) -> list[str]:
    if depth > 8:  # the schemas nest a few levels; a self-referencing $def stops here
        return []
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _walk(document, document["$defs"][ref.removeprefix("#/$defs/")], prefix, depth + 1)
    found: list[str] = []
    for member in node.get("anyOf", []):
        found += _walk(document, member, prefix, depth + 1)
    if "items" in node:
        found += _walk(document, node["items"], f"{prefix}[]", depth + 1)
    for name, prop in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        found += [path] if prop.get(PERSONAL_DATA_KEYWORD) else _walk(document, prop, path, depth + 1)
    return found
