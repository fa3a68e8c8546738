"""Write schemas/ (the JSON Schemas and the AsyncAPI document the code defines), or check it against the code.

python -m tools.schemas           # write the files (make schemas)
python -m tools.schemas --check   # exit 1 if schemas/ differs from the code (make lint)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from service.adapters.kafka.contract import ASYNCAPI_PATH, asyncapi, channel_specs, json_schemas, render

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"




def render_all() -> dict[str, str]:
    """Every file under schemas/ by its relative path, as the code defines it now."""
    documents = {**json_schemas(), ASYNCAPI_PATH: asyncapi(channel_specs())}
    return {path: render(document) for path, document in sorted(documents.items())}


def write_all(root: Path) -> list[str]:
    """Write the files under root; returns the paths that changed."""
    changed = []
    for path, text in render_all().items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def check_all(root: Path) -> list[str]:
    """Problems of the files under root: missing, outdated, or stale (no longer generated)."""
    expected = render_all()
    problems = [
        _problem(path, _read(root / path)) for path, text in expected.items() if _read(root / path) != text
    ]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*.json")} if root.exists() else set()
    return problems + [f"stale: {path}" for path in sorted(present - expected.keys())]


def _problem(path: str, current: str | None) -> str:
    return f"missing: {path}" if current is None else f"outdated: {path}"


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Write schemas/, or with --check report differences and return 1."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on any difference")
    parser.add_argument("--dir", type=Path, default=SCHEMAS_DIR, help="the schemas directory")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_all(args.dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in write_all(args.dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
