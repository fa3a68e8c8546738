"""The official AsyncAPI parser (@asyncapi/parser, pinned in tools/asyncapi-parser/) accepts the document the
service serves, fetched from the running app, and the committed schemas/asyncapi.json, each on its own.

`make asyncapi-parser` (run by `make test` and `make unit`) installs the parser with npm; Debian's nodejs runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.adapters.kafka.contract import ASYNCAPI_PATH
from service.bootstrap import Service, http_app
from service.config import Settings
from tools.schemas import SCHEMAS_DIR

PARSER_DIR = Path(__file__).resolve().parents[2] / "tools" / "asyncapi-parser"
ERROR = 0  # the parser's DiagnosticSeverity.Error


def parse(text: str, source: str) -> tuple[int, list[dict[str, Any]]]:
    """The parser's exit code and diagnostics for a document read from `source` (relative refs resolve there)."""
    node = shutil.which("node")
    assert node, "the AsyncAPI contract test needs Node.js: apt-get install nodejs npm"
    assert (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir(), "run: make asyncapi-parser"
    done = subprocess.run(
        [node, "validate.mjs", source], cwd=PARSER_DIR, input=text, capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def errors(diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in diagnostics if d["severity"] == ERROR]


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings()
    app = http_app(Service(settings), settings)  # no lifespan: the document needs no broker or database
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


async def test_the_served_document_validates_from_its_url(api: httpx.AsyncClient) -> None:
    served = await api.get("/asyncapi.json")
    assert served.status_code == 200
    code, diagnostics = parse(served.text, "http://api/asyncapi.json")
    assert (code, errors(diagnostics)) == (0, [])


def test_the_committed_document_validates_away_from_the_schemas_folder(tmp_path: Path) -> None:
    alone = tmp_path / ASYNCAPI_PATH
    alone.write_text((SCHEMAS_DIR / ASYNCAPI_PATH).read_text(encoding="utf-8"), encoding="utf-8")
    code, diagnostics = parse(alone.read_text(encoding="utf-8"), str(alone))
    assert (code, errors(diagnostics)) == (0, [])


def test_the_parser_refuses_a_ref_to_a_file_that_is_not_served(tmp_path: Path) -> None:
    document = json.loads((SCHEMAS_DIR / ASYNCAPI_PATH).read_text(encoding="utf-8"))
    message = next(iter(document["components"]["messages"].values()))
    message["payload"] = {"$ref": "./signals/nps.data.schema.json"}
    code, diagnostics = parse(json.dumps(document), str(tmp_path / ASYNCAPI_PATH))
    assert code == 1
    assert [d["code"] for d in errors(diagnostics)] == ["invalid-ref"]
