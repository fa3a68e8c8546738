"""The OpenAPI document as a client generator reads it: areas as tags, readable operation ids, the probes."""

from __future__ import annotations

from tests.contract.test_openapi import openapi, operations_of

AREAS = {
    ("get", "/v1/cases"): ("cases", "list_cases"),
    ("post", "/v1/cases"): ("cases", "open_case"),
    ("get", "/v1/cases/{case_id}"): ("cases", "get_case"),
    ("post", "/v1/cases/{case_id}/assign"): ("commands", "assign"),
    ("post", "/v1/cases/{case_id}/resolve"): ("commands", "resolve"),
    ("post", "/v1/cases/{case_id}/compensations"): ("compensations", "request_compensation"),
    ("post", "/v1/cases/{case_id}/compensations/{request_id}/approve"): (
        "compensations",
        "approve_compensation",
    ),
    ("get", "/v1/trends/root-causes"): ("trends", "root_cause_trends"),
    ("post", "/v1/sessions/revoke"): ("sessions", "revoke_sessions"),
    ("get", "/healthz"): ("ops", "healthz"),
    ("get", "/readyz"): ("ops", "readyz"),
    ("get", "/metrics"): ("ops", "metrics"),
}


def test_every_operation_sits_in_one_declared_area_with_a_readable_unique_id() -> None:
    document = openapi()
    declared = [t["name"] for t in document["tags"]]
    assert declared == ["cases", "commands", "compensations", "trends", "sessions", "ops"]
    assert all(t["description"] for t in document["tags"])
    operations = operations_of(document)
    for key, (tag, operation_id) in AREAS.items():
        assert (operations[key]["tags"], operations[key]["operationId"]) == ([tag], operation_id), key
    ids = [op["operationId"] for op in operations.values()]
    assert len(set(ids)) == len(ids)
    assert all(i.isidentifier() and "_v1_" not in i for i in ids)  # not FastAPI's path-and-method default
    for operation in operations.values():
        assert len(operation["tags"]) == 1 and operation["tags"][0] in declared


def test_the_probes_are_documented_with_their_bodies() -> None:
    operations = operations_of(openapi())
    schemas = openapi()["components"]["schemas"]
    assert operations[("get", "/readyz")]["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
    assert set(schemas["Liveness"]["properties"]) == {"status", "failed", "degraded"}
    assert "text/plain" in operations[("get", "/metrics")]["responses"]["200"]["content"]
