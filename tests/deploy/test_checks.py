"""deploy/checks.py's own cross-checks catch what they are for: each test breaks one thing in a copy of
the rendered base and expects that check, and only that kind of check, to fail."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base(checks: ModuleType) -> list[dict[str, Any]]:
    return checks.render_base()  # type: ignore[no-any-return]


def policy_failures(checks: ModuleType, built: list[dict[str, Any]]) -> list[str]:
    report = checks.Report()
    checks._check_policy(report, built)
    return report.failures  # type: ignore[no-any-return]


def scaled_object(built: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in built if d["kind"] == "ScaledObject")


def test_the_committed_base_passes_the_policy(checks: ModuleType, base: list[dict[str, Any]]) -> None:
    assert policy_failures(checks, copy.deepcopy(base)) == []


def test_a_trigger_per_topic_fails_the_one_total_lag_trigger_check(
    checks: ModuleType, base: list[dict[str, Any]]
) -> None:
    built = copy.deepcopy(base)
    spec = scaled_object(built)["spec"]
    single = spec["triggers"][0]
    spec["triggers"] = [
        {
            **single,
            "name": f"{kind}-lag",
            "metadata": {**single["metadata"], "topic": f"recovery.signals.{kind}.v1"},
        }
        for kind in checks.SIGNAL_KINDS
    ]
    failures = policy_failures(checks, built)
    assert any("one trigger" in f for f in failures), failures
    assert any("names no topic" in f for f in failures), failures


def test_more_replicas_than_the_groups_partitions_fails(
    checks: ModuleType, base: list[dict[str, Any]]
) -> None:
    built = copy.deepcopy(base)
    scaled_object(built)["spec"]["maxReplicaCount"] = 5 * 6 + 1
    failures = policy_failures(checks, built)
    assert [f for f in failures if "maxReplicaCount" in f] == failures and len(failures) == 1, failures
    scaled_object(built)["spec"]["maxReplicaCount"] = 5 * 6  # every one of 30 consumers owns a partition
    assert policy_failures(checks, built) == []


def test_idle_consumers_allowed_fails(checks: ModuleType, base: list[dict[str, Any]]) -> None:
    built = copy.deepcopy(base)
    scaled_object(built)["spec"]["triggers"][0]["metadata"]["allowIdleConsumers"] = "true"
    failures = policy_failures(checks, built)
    assert len(failures) == 1 and "no partition" in failures[0], failures


def test_the_scaledobject_schema_takes_no_topic_but_refuses_what_keda_refuses(
    checks: ModuleType, base: list[dict[str, Any]]
) -> None:
    schema = json.loads((checks.K8S_SCHEMAS / "keda.sh-v1alpha1-scaledobject.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    committed = copy.deepcopy(scaled_object(base))
    assert list(validator.iter_errors(committed)) == []
    limited = copy.deepcopy(committed)
    limited["spec"]["triggers"][0]["metadata"]["limitToPartitionsWithLag"] = "true"
    assert list(validator.iter_errors(limited)), "limitToPartitionsWithLag needs a topic"
    limited["spec"]["triggers"][0]["metadata"]["topic"] = "recovery.signals.nps.v1"
    assert list(validator.iter_errors(limited)) == []
    typo = copy.deepcopy(committed)
    typo["spec"]["maxReplicas"] = 10
    assert list(validator.iter_errors(typo))


def test_the_prometheus_operator_build_passes_and_its_rules_cannot_drift(
    checks: ModuleType, base: list[dict[str, Any]]
) -> None:
    built = checks.TARGETS["prometheus-operator"][1]()
    assert policy_failures(checks, built) == []
    report = checks.Report()
    checks._check_pod_monitor(report, built)
    checks._check_prometheus_rule(report, built)
    assert report.failures == []

    rule = next(d for d in built if d["kind"] == "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "1h"
    report = checks.Report()
    checks._check_prometheus_rule(report, built)
    assert len(report.failures) == 1 and "equal" in report.failures[0], report.failures


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        ({"jobLabel": "app.kubernetes.io/component"}, "jobLabel"),
        ({"podMetricsEndpoints": [{"port": "metrics"}]}, "named container port"),
        ({"selector": {"matchLabels": {"app.kubernetes.io/name": "other"}}}, "selects"),
    ],
)
def test_a_pod_monitor_that_would_not_feed_the_alerts_fails(
    checks: ModuleType, change: dict[str, Any], failure: str
) -> None:
    built = checks.TARGETS["prometheus-operator"][1]()
    next(d for d in built if d["kind"] == "PodMonitor")["spec"].update(change)
    report = checks.Report()
    checks._check_pod_monitor(report, built)
    assert len(report.failures) == 1 and failure in report.failures[0], report.failures


def test_the_external_secrets_overlay_replaces_the_placeholder_with_the_four_keys(
    checks: ModuleType,
) -> None:
    built = checks.TARGETS["external-secrets"][1]()
    kinds = [d["kind"] for d in built]
    assert "Secret" not in kinds and kinds.count("ExternalSecret") == 1
    assert policy_failures(checks, built) == []

    missing = copy.deepcopy(built)
    external = next(d for d in missing if d["kind"] == "ExternalSecret")
    external["spec"]["data"] = external["spec"]["data"][:2]
    failures = policy_failures(checks, missing)
    assert any("makes exactly" in f for f in failures) and any("TriggerAuthentication" in f for f in failures)

    both = copy.deepcopy(built) + [d for d in checks.render(checks.K8S_BASE) if d["kind"] == "Secret"]
    assert any("one source of the secrets" in f for f in policy_failures(checks, both))


def test_promtool_runs_the_rule_tests_on_the_groups_extracted_from_the_prometheusrule(
    checks: ModuleType, deploy_tools: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promtool = deploy_tools["PROMTOOL"]
    checks.write_operator_rules(tmp_path / "as-generated")
    passed = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "as-generated" / "rules.test.yml")],
        capture_output=True,
        text=True,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr

    rule = checks.load_documents(checks.PROMETHEUSRULE)[0]
    first = rule["spec"]["groups"][0]["rules"][0]
    first["expr"] = "vector(0) > 1"  # an alert that can never fire: its firing test must fail
    edited = tmp_path / "prometheusrule.yaml"
    edited.write_text(yaml.safe_dump(rule))
    monkeypatch.setattr(checks, "PROMETHEUSRULE", edited)
    checks.write_operator_rules(tmp_path / "edited")
    failed = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "edited" / "rules.test.yml")],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and first["alert"] in failed.stdout + failed.stderr


def test_a_secret_without_the_console_key_fails(checks: ModuleType, base: list[dict[str, Any]]) -> None:
    """Without RECOVERY_CONSOLE_SESSION_KEY each pod would make its own, and a session would break whenever
    the load balancer picked another pod (`recovery serve` on 0.0.0.0 refuses to start without it)."""
    built = copy.deepcopy(base)
    del next(d for d in built if d["kind"] == "Secret")["stringData"]["RECOVERY_CONSOLE_SESSION_KEY"]
    failures = policy_failures(checks, built)
    assert len(failures) == 1 and "the Secret holds exactly" in failures[0], failures


def test_a_session_cookie_without_secure_fails(checks: ModuleType, base: list[dict[str, Any]]) -> None:
    built = copy.deepcopy(base)
    next(d for d in built if d["kind"] == "ConfigMap")["data"]["RECOVERY_CONSOLE_COOKIE_SECURE"] = "false"
    failures = policy_failures(checks, built)
    assert len(failures) == 1 and "session cookie stays Secure" in failures[0], failures


def test_the_console_key_in_the_configmap_fails(checks: ModuleType, base: list[dict[str, Any]]) -> None:
    built = copy.deepcopy(base)
    next(d for d in built if d["kind"] == "ConfigMap")["data"]["RECOVERY_CONSOLE_SESSION_KEY"] = "k" * 48
    assert "no secret setting in the ConfigMap" in policy_failures(checks, built)
