"""Settings: RECOVERY_* variables, partial SLA overrides, and start-up refusing bad values by name."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.bootstrap import intake_rules
from service.config import Settings, describe_error
from service.domain.severity import Severity, load_default_policy
from tests.support import DATA_KEYS
from tests.unit.conftest import Serve


def test_a_partial_sla_override_keeps_the_other_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SLA_RESOLUTION", '{"critical": "PT2H"}')
    settings = Settings()
    assert settings.sla_resolution[Severity.CRITICAL] == timedelta(hours=2)
    assert settings.sla_resolution[Severity.MINOR] == timedelta(hours=72)


def test_api_tokens_map_to_actor_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "abc-0123456789-0123456789-0123456789"
    monkeypatch.setenv("RECOVERY_API_TOKENS", json.dumps({token: {"actor": "ana", "role": "manager"}}))
    found = Settings().api_tokens.actor_of(token)
    assert found is not None and (found.actor, found.role) == ("ana", "manager")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECOVERY_HTTP_PORT", "eighty"),
        ("RECOVERY_SLA_RESOLUTION", '{"critical": "four hours"}'),
        ("RECOVERY_SLA_WARNING_FRACTION", "1.5"),
        ("RECOVERY_API_TOKENS", '{"t-0123456789-0123456789-0123456789": {"actor": "x", "role": "admin"}}'),
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
        ("RECOVERY_COMPENSATION_LIMITS", '{"agent": 50}'),  # removed: limits are per currency now
        ("RECOVERY_BILLING_SOURCES", '["/billing", ""]'),
        ("RECOVERY_LOG_LEVEL", "verbose"),
        ("RECOVERY_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("RECOVERY_KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("RECOVERY_COMPENSATION_POLICY_FILE", "/nonexistent/compensation.json"),
        ("RECOVERY_COMPENSATION_STAKE_FACTOR", "1.5"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable: str, value: str, serve: Serve) -> None:
    run = serve({variable: value})
    assert run.returncode == 2
    assert variable in run.stderr


def test_clock_bounds_and_a_policy_file_reach_the_intake_rules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = json.loads(resources.files("service.domain").joinpath("policy.json").read_text())
    policy["version"] = "ops-2026-12-01"
    policy["nps_bands"][0]["high"] = 4
    policy["nps_bands"][1]["low"] = 5
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    monkeypatch.setenv("RECOVERY_POLICY_FILE", str(path))
    monkeypatch.setenv("RECOVERY_CLOCK_SKEW", "PT2M")
    monkeypatch.setenv("RECOVERY_MAX_SIGNAL_AGE", "P7D")
    rules = intake_rules(Settings())
    assert rules.policy.version == "ops-2026-12-01" and rules.policy.nps_bands[0].high == 4
    assert (rules.sla.clock_skew, rules.sla.max_signal_age) == (timedelta(minutes=2), timedelta(days=7))


def test_the_packaged_policy_and_clock_bounds_are_the_defaults() -> None:
    rules = intake_rules(Settings())
    assert rules.policy == load_default_policy()
    assert (rules.sla.clock_skew, rules.sla.max_signal_age) == (timedelta(minutes=5), timedelta(days=30))


@pytest.mark.parametrize(
    ("variable", "value"), [("RECOVERY_CLOCK_SKEW", "PT0S"), ("RECOVERY_MAX_SIGNAL_AGE", "-P1D")]
)
def test_clock_bounds_must_be_positive_durations(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert variable in describe_error(refused.value)


def broken_policy(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> str:
    policy = json.loads(resources.files("service.domain").joinpath("policy.json").read_text())
    change(policy)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return str(path)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p["nps_bands"][0].update(low="zero"), "nps_bands.0.low"),
        (lambda p: p.pop("version"), "version"),
        (lambda p: p["nps_bands"][1].update(low=2), "nps_bands overlap at 2"),
        (lambda p: p["modifiers"].update(min_reopen_count=0), "modifiers.min_reopen_count"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_variable_and_the_field(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: Callable[[dict[str, Any]], object],
    named: str,
) -> None:
    monkeypatch.setenv("RECOVERY_POLICY_FILE", broken_policy(tmp_path, change))
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = describe_error(refused.value)
    assert "RECOVERY_POLICY_FILE" in message and named in message


@pytest.mark.parametrize("content", [None, "{not json"])
def test_a_missing_or_unreadable_policy_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "policy.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("RECOVERY_POLICY_FILE", str(path))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert f"invalid RECOVERY_POLICY_FILE: Value error, {path}" in describe_error(refused.value)


def test_serve_with_a_bad_policy_file_stops_before_starting(tmp_path: Path) -> None:
    path = broken_policy(tmp_path, lambda p: p.update(escalated_severity="severe"))
    run = subprocess.run(
        [sys.executable, "-m", "service.entrypoints.cli", "serve"],
        env={"PATH": "/usr/bin:/bin", "RECOVERY_POLICY_FILE": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "RECOVERY_POLICY_FILE" in run.stderr and "escalated_severity" in run.stderr


def test_a_good_configuration_gets_past_the_checks_in_process(serve: Serve) -> None:
    """The in-process `recovery serve` the refusals above use reaches the app with nothing wrong."""
    with pytest.raises(AssertionError, match="got past its configuration checks"):
        serve({"RECOVERY_DATA_KEYS": DATA_KEYS})
