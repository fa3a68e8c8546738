"""The OpenAPI document covers every endpoint of the contract, with request, response and error models."""

from __future__ import annotations

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


def test_every_contract_endpoint_is_documented_with_its_answers_and_refusals() -> None:
    document = openapi()
    operations = {
        (method, path): op for path, item in document["paths"].items() for method, op in item.items()
    }
    assert set(operations) >= CONTRACT
    for key in CONTRACT:
        responses = operations[key]["responses"]
        assert {"401", "403"} <= set(responses), key
        success = responses.get("200") or responses.get("201")
        assert success and "$ref" in str(success["content"]), key
        assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        if key[0] == "post":
            assert "422" in responses and "Idempotency-Key" in str(operations[key].get("parameters", [])), key
