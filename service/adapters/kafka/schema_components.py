"""The files under schemas/ as AsyncAPI `components/schemas`, so the AsyncAPI document stands on its own.

A message's payload refers to `#/components/schemas/<name>`, where the name is the file's path under schemas/
with dots for the slash and without `.schema.json` (`signals/nps.data.schema.json` is `signals.nps.data`).
Each file's `$defs` become components of their own, under their model's name, and its `#/$defs/...` refs are
rewritten to them: served from any URL, the document refers to nothing outside itself. `$schema` and `$id`
name the files and are dropped from the inlined copies (AsyncAPI's schema format is its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COMPONENTS_PREFIX = "#/components/schemas/"
_DEFS_PREFIX = "#/$defs/"
_SUFFIX = ".schema.json"


def component_name(path: str) -> str:
    """The components/schemas name of a file under schemas/: signals/nps.data.schema.json is signals.nps.data."""
    return path.removesuffix(_SUFFIX).replace("/", ".", 1)


def schema_path(ref: str) -> str:
    """The file under schemas/ that a `#/components/schemas/<name>` payload ref stands for."""
    return ref.removeprefix(COMPONENTS_PREFIX).replace(".", "/", 1) + _SUFFIX


def schema_ref(path: str) -> dict[str, str]:
    """A payload that is the schema of a file under schemas/, as a ref inside the document."""
    return {"$ref": COMPONENTS_PREFIX + component_name(path)}


def inline(documents: Mapping[str, dict[str, Any]], paths: Iterable[str]) -> dict[str, Any]:
    """components/schemas for the given files: each file's schema, and every definition they share once.

    ValueError when two files define one name differently (one of them would be lost).
    """
    components: dict[str, Any] = {}
    for path in dict.fromkeys(paths):
        schema = {k: v for k, v in documents[path].items() if k not in ("$schema", "$id", "$defs")}
        components[component_name(path)] = _rewritten(schema)
        for name, definition in documents[path].get("$defs", {}).items():
            _add(components, name, _rewritten(definition), path)
    return dict(sorted(components.items()))


def _add(components: dict[str, Any], name: str, definition: dict[str, Any], path: str) -> None:
    if components.setdefault(name, definition) != definition:
        raise ValueError(f"{path}: $defs/{name} differs from another file's {name}: rename one of the models")


def _rewritten(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                COMPONENTS_PREFIX + value.removeprefix(_DEFS_PREFIX)
                if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS_PREFIX)
                else _rewritten(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewritten(value) for value in node]
    return node
