"""The domain stays pure: no I/O, no frameworks, no clocks or random ids."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "service" / "domain"
FORBIDDEN = {
    "asyncpg",
    "aiokafka",
    "faststream",
    "fastapi",
    "structlog",
    "prometheus_client",
    "uvicorn",
    "httpx",
    "vaderSentiment",
    "socket",
    "subprocess",
    "os",
    "logging",
    "random",
    "asyncio",
    "service.adapters",
    "service.app",
    "service.entrypoints",
    "service.config",
    "service.bootstrap",
    "service.observability",
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_domain_imports_no_io_framework_or_outer_layer() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in DOMAIN.glob("*.py")
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert offending == set()


def test_the_domain_reads_no_clock_and_mints_no_random_ids() -> None:
    source = "\n".join(p.read_text() for p in DOMAIN.glob("*.py"))
    for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "uuid4(", "uuid1("):
        assert call not in source, call
