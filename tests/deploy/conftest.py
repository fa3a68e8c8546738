"""The deploy tests run the service the way the other suites do: in-process over the real broker and
database (tests/integration/conftest.py) or as a process (tests/support.py's ServiceProcess)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.conftest import db
from tests.integration.conftest import api, producer, service, settings

__all__ = ["api", "checks", "db", "deploy_tools", "producer", "service", "settings"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def deploy_tools() -> dict[str, str]:
    """promtool and the check tools' Python, installed by deploy/check.sh if missing (NAME -> path)."""
    result = subprocess.run(
        ["bash", str(REPO / "deploy" / "check.sh"), "--install-tools"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = (re.match(r"^([A-Z_]+)=(.+)$", line) for line in result.stdout.splitlines())
    return {m.group(1): m.group(2) for m in found if m}


@pytest.fixture(scope="session")
def checks() -> ModuleType:
    """deploy/checks.py as a module (it is a script in deploy/, not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_checks", REPO / "deploy" / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_checks"] = module
    spec.loader.exec_module(module)
    return module
