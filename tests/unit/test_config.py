"""Settings: RECOVERY_* variables, partial SLA overrides, and start-up refusing bad values by name."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from service.config import Settings
from service.domain.severity import Severity


def test_a_partial_sla_override_keeps_the_other_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SLA_RESOLUTION", '{"critical": "PT2H"}')
    settings = Settings()
    assert settings.sla_resolution[Severity.CRITICAL] == timedelta(hours=2)
    assert settings.sla_resolution[Severity.MINOR] == timedelta(hours=72)


def test_api_tokens_map_to_actor_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_API_TOKENS", '{"abc": {"actor": "ana", "role": "manager"}}')
    assert Settings().api_tokens["abc"].role == "manager"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECOVERY_HTTP_PORT", "eighty"),
        ("RECOVERY_SLA_RESOLUTION", '{"critical": "four hours"}'),
        ("RECOVERY_SLA_WARNING_FRACTION", "1.5"),
        ("RECOVERY_API_TOKENS", '{"t": {"actor": "x", "role": "admin"}}'),
        ("RECOVERY_KAFKA_IDEMPOTENT_PRODUCER", "perhaps"),
        ("RECOVERY_SLA_RESOLUTION", '{"critical": "-PT4H"}'),
        ("RECOVERY_SLA_FIRST_RESPONSE", '{"chat": "PT0S"}'),
        ("RECOVERY_FOLLOWUP_AFTER", "PT0S"),
        ("RECOVERY_REOPEN_WINDOW", "-P1D"),
        ("RECOVERY_TREND_WINDOW", "PT12H"),
        ("RECOVERY_TREND_WINDOW", "P1DT6H"),
        ("RECOVERY_SLA_WARNING_FRACTION", "0"),
        ("RECOVERY_MAX_TEXT_LENGTH", "0"),
        ("RECOVERY_MAX_TEXT_LENGTH", "1000000"),
        ("RECOVERY_COMPENSATION_LIMITS", '{"agent": -5}'),
        ("RECOVERY_COMPENSATION_STAKE_FACTOR", "NaN"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "service.entrypoints.cli", "serve"],
        env={"PATH": "/usr/bin:/bin", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert variable in run.stderr
