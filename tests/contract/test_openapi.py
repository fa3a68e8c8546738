"""The OpenAPI document covers every endpoint of the contract, with request, response and error models."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from service.bootstrap import Service, http_app
from service.config import Settings

CONTRACT = {
    ("get", "/v1/cases"),
    ("get", "/v1/cases/{case_id}"),
    ("post", "/v1/cases"),
    ("post", "/v1/cases/{case_id}/assign"),
    ("post", "/v1/cases/{case_id}/steps"),
    ("post", "/v1/cases/{case_id}/steps/{step_id}/outcome"),
    ("post", "/v1/cases/{case_id}/compensations"),
    ("post", "/v1/cases/{case_id}/compensations/{request_id}/approve"),
    ("post", "/v1/cases/{case_id}/resolve"),
    ("post", "/v1/cases/{case_id}/follow-up"),
    ("post", "/v1/cases/{case_id}/reopen"),
    ("get", "/v1/trends/root-causes"),
}


def openapi() -> dict:  # type: ignore[type-arg]
    settings = Settings()
    return http_app(Service(settings), settings).openapi()


def operations_of(document: dict) -> dict:  # type: ignore[type-arg]
    return {(method, path): op for path, item in document["paths"].items() for method, op in item.items()}


def test_every_contract_endpoint_is_documented_with_its_answers_and_refusals() -> None:
    operations = operations_of(openapi())
    assert set(operations) >= CONTRACT
    for key in CONTRACT:
        responses = operations[key]["responses"]
        assert {"401", "422", "503"} <= set(responses), key
        success = responses.get("200") or responses.get("201")
        assert success and "$ref" in str(success["content"]), key
        if key[0] == "post":
            assert {"403", "409", "413"} <= set(responses), key
            assert "Idempotency-Key" in str(operations[key].get("parameters", [])), key
        if "{case_id}" in key[1]:
            assert "404" in responses, key
    assert "400" in operations[("get", "/v1/cases")]["responses"]  # a cursor the API did not issue


def test_every_refusal_is_documented_as_error_body_and_fastapis_own_422_shape_is_gone() -> None:
    document = openapi()
    for key, operation in operations_of(document).items():
        for status, response in operation["responses"].items():
            if int(status) >= 400 and key[1].startswith("/v1/"):  # the probes answer their own bodies
                schema = response["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), (key, status)
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "detail", "field"}


def test_the_bearer_scheme_is_documented_and_required_by_every_v1_operation() -> None:
    document = openapi()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for key, operation in operations_of(document).items():
        if key[1].startswith("/v1/"):
            assert operation["security"] == [{"bearer": []}], key
        else:  # the probes and /metrics, for the orchestrator and Prometheus
            assert "security" not in operation and operation["tags"] == ["ops"], key


def test_every_string_a_command_takes_has_a_documented_bound() -> None:
    from service.adapters.http.bounds import MAX_OWNER_LENGTH, MAX_TEXT_LENGTH
    from service.domain.bounds import MAX_ID_LENGTH
    from service.domain.money import MAX_AMOUNT

    document = openapi()
    schemas = document["components"]["schemas"]
    for name in (
        "AssignBody",
        "OutcomeBody",
        "ResolveBody",
        "CompensationBody",
        "FollowUpBody",
        "ReopenBody",
        "OpenBody",
    ):
        assert schemas[name]["additionalProperties"] is False, name
        for field, schema in schemas[name]["properties"].items():
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "string" and "enum" not in option and field != "amount":
                    assert option["maxLength"] in (MAX_ID_LENGTH, MAX_OWNER_LENGTH, MAX_TEXT_LENGTH, 3), (
                        name,
                        field,
                    )
                    assert "pattern" in option, (name, field)
    amount = schemas["CompensationBody"]["properties"]["amount"]
    assert {"type": "number", "exclusiveMinimum": 0.0, "maximum": float(MAX_AMOUNT)} in amount["anyOf"]
    for key, operation in operations_of(document).items():
        for parameter in operation.get("parameters", []):
            for option in parameter["schema"].get("anyOf", [parameter["schema"]]):
                if option.get("type") == "string" and "enum" not in option and "format" not in option:
                    assert option["maxLength"] <= 1000 and "pattern" in option, (key, parameter["name"])


def test_a_case_is_typed_down_to_its_steps_compensations_resolution_and_clocks() -> None:
    schemas = openapi()["components"]["schemas"]
    case = schemas["CaseView"]["properties"]
    assert {"customer_tier", "channel", "amount_at_stake"} <= case.keys()
    for field, model in (("steps", "StepView"), ("compensations", "CompensationView")):
        assert case[field]["items"] == {"$ref": f"#/components/schemas/{model}"}
    assert {"$ref": "#/components/schemas/ResolutionView"} in case["resolution"]["anyOf"]
    assert {"amount", "currency", "status", "needs_approval"} <= schemas["CompensationView"][
        "properties"
    ].keys()
    assert schemas["CaseDetail"]["properties"]["clocks"]["items"] == {
        "$ref": "#/components/schemas/ClockView"
    }


def test_the_document_carries_the_running_packages_version() -> None:
    assert openapi()["info"]["version"] == importlib.metadata.version("recovery-loop")


def test_a_customer_id_kafka_accepts_is_one_the_api_searches_and_opens() -> None:
    """One bound per identifier: a customer id up to the signal schemas' maxLength is never refused over HTTP."""
    signals = Path(__file__).resolve().parents[2] / "schemas" / "signals"
    from_kafka = {
        json.loads(path.read_text())["properties"]["customer_id"]["maxLength"]
        for path in signals.glob("*.data.schema.json")
    }
    document = openapi()
    [search] = [p for p in document["paths"]["/v1/cases"]["get"]["parameters"] if p["name"] == "customer_id"]
    searched = {o.get("maxLength") for o in search["schema"].get("anyOf", [search["schema"]])} - {None}
    opened = document["components"]["schemas"]["OpenBody"]["properties"]["customer_id"]["maxLength"]
    assert len(from_kafka) == 1 and searched == from_kafka == {opened}
