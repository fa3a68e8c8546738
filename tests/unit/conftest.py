"""Fixtures of the fast tier."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from service import bootstrap
from service.entrypoints import cli


@dataclass(frozen=True)
class Refused:
    returncode: int
    stderr: str


Serve = Callable[[dict[str, str]], Refused]


def _past_the_checks(*_: Any, **__: Any) -> Any:
    raise AssertionError("recovery serve got past its configuration checks and built the app")


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Serve:
    """`recovery serve` in this process with only these RECOVERY_* variables set: its exit code and stderr.
    Every configuration check comes before the app is built, so building it fails the test instead of serving.
    (tests/unit/test_config.py starts one real process the same way, to hold the two to the same path.)"""

    def run(env: dict[str, str]) -> Refused:
        for name in [n for n in os.environ if n.startswith("RECOVERY_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(cli, "configure_logging", lambda *_: None)  # the suite's logging stays as it is
        monkeypatch.setattr(bootstrap, "build_app", _past_the_checks)
        capsys.readouterr()
        code = cli.main(["serve"])
        return Refused(code, capsys.readouterr().err)

    return run
