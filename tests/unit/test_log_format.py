"""Logs are human-readable on a terminal and JSON otherwise, and RECOVERY_LOG_FORMAT forces either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from service.config import Settings
from service.observability import LogFormat, configure_logging


class Stdout(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def logged(monkeypatch: pytest.MonkeyPatch, terminal: bool, log_format: LogFormat) -> list[str]:
    """The lines a structlog event and a library's stdlib record print, configured as the service does."""
    out = Stdout(terminal)
    monkeypatch.setattr("sys.stdout", out)
    configure_logging("INFO", log_format)
    structlog.get_logger().info("case_opened", case_id="c-1", severity="major")
    logging.getLogger("aiokafka").warning("group rebalanced")
    return out.getvalue().splitlines()


def test_a_terminal_gets_human_readable_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    case, library = logged(monkeypatch, terminal=True, log_format="auto")
    for line in (case, library):
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    assert "case_opened" in case and "case_id" in case and "c-1" in case
    assert "group rebalanced" in library and "aiokafka" in library


def test_anything_else_gets_one_json_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    case, library = logged(monkeypatch, terminal=False, log_format="auto")
    assert json.loads(case) | {"timestamp": "t"} == {
        "event": "case_opened",
        "case_id": "c-1",
        "severity": "major",
        "level": "info",
        "timestamp": "t",
    }
    assert json.loads(library)["event"] == "group rebalanced" and json.loads(library)["logger"] == "aiokafka"


@pytest.mark.parametrize(("terminal", "log_format"), [(True, "json"), (False, "console")])
def test_the_setting_forces_a_format_whatever_stdout_is(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, log_format: LogFormat
) -> None:
    case, _ = logged(monkeypatch, terminal, log_format)
    is_json = True
    try:
        json.loads(case)
    except json.JSONDecodeError:
        is_json = False
    assert is_json is (log_format == "json")
    assert "case_opened" in case


def test_the_log_format_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_LOG_FORMAT", "console")
    assert Settings().log_format == "console"
    assert Settings.model_fields["log_format"].default == "auto"
    monkeypatch.setenv("RECOVERY_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()
