"""The compensation policy file: the example loads as documented; every mistake is refused naming its field;
billing's answers are taken only from the configured sources."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from examples.billing_service import answer_record
from service.adapters.compensation_policy_file import CompensationPolicyFileError, load_compensation_limits
from service.adapters.kafka.cloudevents import InvalidMessage
from service.adapters.kafka.results import decode_result
from service.domain.signals import Category, Tier
from tests.contract.test_sdk_interop import REQUEST, record_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compensation-policy.json"


def written(tmp_path: Path, policy: dict[str, Any]) -> Path:
    path = tmp_path / "compensation.json"
    path.write_text(json.dumps(policy), encoding="utf-8")
    return path


def example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


def test_the_example_file_loads_with_its_narrowed_rule_first() -> None:
    limits = load_compensation_limits(EXAMPLE)
    assert limits.version == example()["version"]
    gold_damage = limits.per_case("agent", "EUR", Category.PROPERTY_DAMAGE, Tier.GOLD)
    standard_damage = limits.per_case("agent", "EUR", Category.PROPERTY_DAMAGE, Tier.STANDARD)
    assert (gold_damage.limit, standard_damage.limit) == (Decimal(150), Decimal(50))
    assert "category property_damage/safety, tier gold/platinum" in gold_damage.rule
    assert limits.per_case("owner", "EUR", None, Tier.STANDARD).limit is None
    # JPY names no agent: an agent's every yen waits; USD is not in the file: nothing in it goes out alone.
    assert limits.per_case("agent", "JPY", None, Tier.STANDARD).limit == 0
    assert limits.per_customer("USD").limit == 0 and limits.per_customer("JPY").limit == Decimal(150000)


def test_without_a_file_the_built_in_table_holds() -> None:
    limits = load_compensation_limits(None)
    assert limits.version is None
    assert limits.per_case("agent", "EUR", None, Tier.STANDARD).limit == Decimal(50)
    assert limits.per_case("agent", "KWD", None, Tier.STANDARD).limit == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["currencies"].update({"CLF": p["currencies"]["EUR"]}), "CLF"),
        (lambda p: p["currencies"].update({"XYZ": p["currencies"]["EUR"]}), "XYZ"),
        (lambda p: p["currencies"]["EUR"]["per_case"][1]["limits"].update({"agent": "-5"}), "limits.agent"),
        (lambda p: p["currencies"]["EUR"]["per_case"][1]["limits"].update({"admin": "5"}), "limits.admin"),
        (lambda p: p["currencies"]["EUR"].update({"per_case": []}), "per_case"),
        (lambda p: p["currencies"]["EUR"].update({"per_case_limit": "5"}), "per_case_limit"),
        (lambda p: p["currencies"]["EUR"]["per_case"][0]["when"].update({"tier": ["diamond"]}), "when.tier"),
        (lambda p: p.update({"customer_window": "-P1D"}), "customer_window"),
        (lambda p: p.update({"stake_factor": "NaN"}), "stake_factor"),
        (lambda p: p.pop("version"), "version"),
    ],
)
def test_a_mistake_in_the_file_is_refused_naming_its_field(tmp_path: Path, change: Any, field: str) -> None:
    policy = example()
    change(policy)
    with pytest.raises(CompensationPolicyFileError) as refused:
        load_compensation_limits(written(tmp_path, policy))
    assert field in str(refused.value)
    assert str(tmp_path) in str(refused.value)


def test_a_missing_or_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CompensationPolicyFileError, match="cannot be read"):
        load_compensation_limits(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(CompensationPolicyFileError, match="bad.json"):
        load_compensation_limits(tmp_path / "bad.json")


def test_billing_answers_are_taken_only_from_a_trusted_source() -> None:
    value, headers = record_of(answer_record(REQUEST, False, "card expired"))
    trusted = frozenset({"/examples/billing"})
    assert decode_result(value, headers, trusted).request_id == "req-1"
    assert decode_result(value, headers, None).request_id == "req-1"  # unset: every source, with a warning
    with pytest.raises(InvalidMessage, match="not a billing source this service trusts"):
        decode_result(value, headers, frozenset({"/billing"}))


@pytest.mark.parametrize("field", ["reference", "reason"])
def test_billing_text_fields_are_bounded(field: str) -> None:
    settled = field == "reference"
    value, headers = record_of(answer_record(REQUEST, settled, "x" * 10_000))
    with pytest.raises(InvalidMessage, match=field):
        decode_result(value, headers)
