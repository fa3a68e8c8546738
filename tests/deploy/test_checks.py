"""deploy/checks.py's own cross-checks catch what they are for: each test breaks one thing in a copy of
the rendered base and expects that check, and only that kind of check, to fail."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_checks", REPO / "deploy" / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_checks"] = module
    spec.loader.exec_module(module)
    return module


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
