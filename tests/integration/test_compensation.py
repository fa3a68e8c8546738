"""Compensation to billing and back, through HTTP and the real broker: limits, approval, once per request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from jsonschema import Draft202012Validator

from service.adapters.kafka.cloudevents import encode_binary
from service.adapters.postgres.command_store import PostgresCommandStore
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.integration.api_only import api_over
from tests.support import (
    AGENT,
    AUTH,
    MANAGER,
    eventually,
    make_settings,
    publish,
    signal_event,
    suite_keyring,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
BILLING = "billing"


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    """Billing answers from BILLING only (RECOVERY_BILLING_SOURCES), as production should run."""
    return make_settings(kafka, database_url).model_copy(update={"billing_sources": [BILLING]})


@pytest.fixture
async def case(api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings) -> dict[str, Any]:
    customer = "comp-1"
    data = {"text": "The boiler leaked again.", "amount_at_stake": {"amount": "100.00", "currency": "EUR"}}
    await publish(
        producer, settings.topic_complaint, customer, signal_event(SignalKind.COMPLAINT, customer, data)
    )

    async def opened() -> dict[str, Any] | None:
        page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AGENT)).json()
        return page["items"][0] if page["items"] else None

    return await eventually(opened, what="the case")


async def billing_answer(
    producer: AIOKafkaProducer, settings: Settings, kind: str, data: dict[str, str], source: str = BILLING
) -> None:
    headers, body = encode_binary(
        id=f"bill-{data['request_id']}-{kind}-{source}",
        source=source,
        type=f"recovery.compensation.{kind}",
        subject="x",
        time=datetime.now(UTC),
        data=data,
    )
    await producer.send_and_wait(settings.topic_compensation_results, body, key=b"x", headers=headers)


async def test_compensation_within_limits_goes_at_once_above_waits_for_approval_and_results_land(
    api: httpx.AsyncClient, case: dict[str, Any], settings: Settings, producer: AIOKafkaProducer, kafka: Kafka
) -> None:
    path = f"/v1/cases/{case['case_id']}/compensations"
    small = {"kind": "credit", "amount": "40.00", "currency": "EUR", "reason": "goodwill"}
    large = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "full repair cost"}
    first = await api.post(path, json=small, headers={**AGENT, "Idempotency-Key": "c-1"})
    assert first.status_code == 200
    waiting = await api.post(path, json=large, headers={**AGENT, "Idempotency-Key": "c-2"})
    [within, held] = waiting.json()["compensations"]
    assert (
        held["status"] == "awaiting_approval" and len(held["needs_approval"]) == 2
    )  # agent limit and 1.5x stake
    c1, c2 = within["request_id"], held["request_id"]
    assert len({c1, c2, "c-1", "c-2"}) == 4  # billing's ids are the service's own, not the callers' keys
    assert (await api.post(f"{path}/{c2}/approve", headers=AGENT)).status_code == 403
    approved = await api.post(f"{path}/{c2}/approve", headers=MANAGER)
    assert approved.json()["compensations"][1]["status"] == "requested"
    assert (await api.post(f"{path}/{c2}/approve", headers=MANAGER)).status_code == 200  # again: nothing new
    again = await api.post(path, json=small, headers={**AGENT, "Idempotency-Key": "c-1"})
    assert again.status_code == 200 and again.json() == first.json()

    requests = AIOKafkaConsumer(
        settings.topic_compensation_requests, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
    )
    await requests.start()
    seen: list[Any] = []
    try:

        async def both() -> bool:
            batch = await requests.getmany(timeout_ms=300)
            seen.extend(r for rs in batch.values() for r in rs)
            return len(seen) >= 2

        await eventually(both, what="two compensation requests on the billing topic")
    finally:
        await requests.stop()
    bodies = {json.loads(r.value)["request_id"]: json.loads(r.value) for r in seen}
    assert len(seen) == 2 and set(bodies) == {c1, c2}
    assert bodies[c1]["approved_by"] == "ana" and bodies[c2]["approved_by"] == "mia"
    assert bodies[c1]["amount"] == "40.00" and bodies[c2]["amount"] == "400.00"
    validator = Draft202012Validator(
        json.loads((SCHEMAS / "outgoing/compensation.requested.data.schema.json").read_text())
    )
    for body in bodies.values():
        validator.validate(body)

    await billing_answer(producer, settings, "settled", {"request_id": c1, "reference": "PAY-77"})
    await billing_answer(producer, settings, "failed", {"request_id": c2, "reason": "card expired"})

    async def landed() -> list[dict[str, Any]] | None:
        comps = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()["compensations"]
        return comps if {c["status"] for c in comps} == {"settled", "failed"} else None

    comps = await eventually(landed, what="billing's answers on the case")
    assert comps[0]["reference"] == "PAY-77" and comps[1]["failure"] == "card expired"
    metrics = (await api.get("/metrics")).text
    assert 'recovery_compensation_results_total{outcome="failed"}' in metrics


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "refund", "amount": "-5", "currency": "EUR", "reason": "x"}, "amount"),
        ({"kind": "refund", "amount": "5", "currency": "USD", "reason": "x"}, "currency"),
        ({"kind": "voucher", "amount": "5", "currency": "EUR", "reason": "x"}, "kind"),
    ],
)
async def test_a_bad_compensation_request_is_refused_naming_the_field(
    api: httpx.AsyncClient, case: dict[str, Any], body: dict[str, str], field: str
) -> None:
    answer = await api.post(f"/v1/cases/{case['case_id']}/compensations", json=body, headers=AGENT)
    assert answer.status_code == 422 and answer.json()["field"] == field
    assert (await api.get(f"/v1/cases/{case['case_id']}", headers=AGENT)).json()["compensations"] == []


@pytest.fixture
async def api_alone(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API over PostgreSQL alone: amounts and request ids need no broker."""
    async with api_over(pool, database_url) as client:
        yield client


async def open_by_hand(api: httpx.AsyncClient, customer: str, stake: str | None = None) -> str:
    """Without a stake every compensation on the case waits for approval (a hand-opened case)."""
    body: dict[str, Any] = {"customer_id": customer, "severity": "major", "reason": "escalated"}
    if stake is not None:
        body["amount_at_stake"] = {"amount": stake, "currency": "EUR"}
    opened = await api.post("/v1/cases", json=body, headers=MANAGER)
    assert opened.status_code == 201
    return opened.json()["case_id"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "currency", "stored"),
    [
        ('"1E+1"', "EUR", "10.00"),
        ("12.5", "EUR", "12.50"),
        ("40", "EUR", "40.00"),
        ('"10.500"', "EUR", "10.50"),
        ('"1E+3"', "JPY", "1000"),
        ('"1.234"', "BHD", "1.234"),
    ],
)
async def test_an_amount_is_stored_and_shown_in_its_currencys_minor_unit_in_plain_notation(
    api_alone: httpx.AsyncClient, content: str, currency: str, stored: str
) -> None:
    case_id = await open_by_hand(api_alone, f"amount-{currency}")
    body = f'{{"kind": "credit", "amount": {content}, "currency": "{currency}", "reason": "goodwill"}}'
    answer = await api_alone.post(
        f"/v1/cases/{case_id}/compensations",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["compensations"][0]["amount"] == stored
    events = (await api_alone.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["events"]
    [requested] = [e for e in events if e["type"] == "case.compensation_requested"]
    assert requested["data"]["amount"] == stored


@pytest.mark.parametrize(
    ("content", "currency", "field"),
    [
        ('"0.1234567"', "EUR", "amount"),
        ('"1e-7"', "EUR", "amount"),
        ("1e-7", "EUR", "amount"),
        ("1.07e308", "EUR", "amount"),
        ('"1.07e308"', "EUR", "amount"),
        ("100000000.000000001", "EUR", "amount"),  # a float would have read 100000000.0 and said yes
        ('"1000000000.01"', "EUR", "amount"),
        ('"100.5"', "JPY", "amount"),
        ('"0"', "EUR", "amount"),
        ('"ten"', "EUR", "amount"),
        ('"10"', "XXE", "currency"),
        ("1.07e308", "XXE", "amount"),  # both out of bounds: the first one is named
        ('"10"', "XAU", "currency"),
    ],
)
async def test_an_amount_outside_its_currencys_bounds_or_an_unknown_currency_is_refused_naming_it(
    api_alone: httpx.AsyncClient, content: str, currency: str, field: str
) -> None:
    case_id = await open_by_hand(api_alone, "amount-refused")
    body = f'{{"kind": "refund", "amount": {content}, "currency": "{currency}", "reason": "x"}}'
    answer = await api_alone.post(
        f"/v1/cases/{case_id}/compensations",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert (await api_alone.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["compensations"] == []


async def test_the_same_idempotency_key_on_two_cases_makes_two_requests_each_with_its_own_request_id(
    api_alone: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    cases = [await open_by_hand(api_alone, customer) for customer in ("twin-1", "twin-2")]
    body = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "repair cost"}
    key = {"Idempotency-Key": "refund-1"}
    answers = [
        await api_alone.post(f"/v1/cases/{c}/compensations", json=body, headers={**AGENT, **key})
        for c in cases
    ]
    assert [a.json()["case_id"] for a in answers] == cases
    [first], [second] = (a.json()["compensations"] for a in answers)
    assert first["request_id"] != second["request_id"]
    repeated = await api_alone.post(
        f"/v1/cases/{cases[0]}/compensations", json=body, headers={**AGENT, **key}
    )
    assert repeated.json() == answers[0].json()
    without_key = await api_alone.post(f"/v1/cases/{cases[0]}/compensations", json=body, headers=AGENT)
    ids = [c["request_id"] for c in without_key.json()["compensations"]]
    assert len(ids) == 2 and len({*ids, second["request_id"]}) == 3

    store = PostgresCommandStore(pool, suite_keyring())
    for case_id, request in zip(cases, (first, second), strict=True):
        assert await store.case_for_request(request["request_id"]) == case_id
        approved = await api_alone.post(
            f"/v1/cases/{case_id}/compensations/{request['request_id']}/approve", headers=MANAGER
        )
        assert approved.status_code == 200 and approved.json()["compensations"][0]["status"] == "requested"
    mine = await api_alone.post(
        f"/v1/cases/{cases[1]}/compensations/{first['request_id']}/approve", headers=MANAGER
    )
    assert mine.status_code == 422 and mine.json()["field"] == "request_id"  # another case's request


async def test_four_eyes_a_running_total_per_actor_and_one_currency_hold_through_the_api(
    api_alone: httpx.AsyncClient,
) -> None:
    path = f"/v1/cases/{await open_by_hand(api_alone, 'governance', stake='1000')}/compensations"
    piece = {"kind": "refund", "amount": "50.00", "currency": "EUR", "reason": "a quarter of 200"}
    for _ in range(4):
        answer = await api_alone.post(path, json=piece, headers=AGENT)
        assert answer.status_code == 200
    pieces = answer.json()["compensations"]
    assert [c["status"] for c in pieces] == ["requested"] + ["awaiting_approval"] * 3
    assert pieces[1]["needs_approval"] == [
        "above the agent limit of 50 EUR: ana already granted 50.00 EUR on this case"
    ]
    dollars = await api_alone.post(path, json={**piece, "currency": "USD"}, headers=AGENT)
    assert dollars.status_code == 422 and dollars.json()["field"] == "currency"
    assert "EUR" in dollars.json()["detail"]

    large = {"kind": "refund", "amount": "600.00", "currency": "EUR", "reason": "repair"}
    mine = (await api_alone.post(path, json=large, headers=MANAGER)).json()["compensations"][-1]
    assert mine["status"] == "awaiting_approval"
    own = await api_alone.post(f"{path}/{mine['request_id']}/approve", headers=MANAGER)
    assert own.status_code == 403 and own.json()["error"] == "not_allowed"
    assert "four eyes" in own.json()["detail"]
    by_owner = await api_alone.post(f"{path}/{mine['request_id']}/approve", headers=AUTH)
    assert by_owner.status_code == 200
    assert by_owner.json()["compensations"][-1] == {**mine, "status": "requested", "approved_by": "tester"}
    by_manager = await api_alone.post(f"{path}/{pieces[1]['request_id']}/approve", headers=MANAGER)
    assert by_manager.status_code == 200 and by_manager.json()["compensations"][1]["approved_by"] == "mia"


async def dead_letter_reason(settings: Settings, kafka: Kafka, naming: str) -> str:
    """The reason of the first dead letter whose reason names `naming`."""
    dlq = AIOKafkaConsumer(
        settings.topic_dlq, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await dlq.start()
    try:

        async def dead_lettered() -> str | None:
            batch = await dlq.getmany(timeout_ms=300)
            reasons = [dict(r.headers)["dlq_reason"].decode() for rs in batch.values() for r in rs]
            return next((r for r in reasons if naming in r), None)

        return await eventually(dead_lettered, what=f"a dead letter naming {naming}")
    finally:
        await dlq.stop()


async def test_billings_answer_to_a_request_still_waiting_for_approval_is_dead_lettered_with_its_reason(
    api: httpx.AsyncClient, case: dict[str, Any], settings: Settings, producer: AIOKafkaProducer, kafka: Kafka
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    large = {"kind": "refund", "amount": "400.00", "currency": "EUR", "reason": "full repair cost"}
    [held] = (await api.post(f"{path}/compensations", json=large, headers=AGENT)).json()["compensations"]
    assert held["status"] == "awaiting_approval"
    await billing_answer(
        producer, settings, "settled", {"request_id": held["request_id"], "reference": "PAY-1"}
    )

    reason = await dead_letter_reason(settings, kafka, naming=held["request_id"])
    assert "still waits for approval" in reason and "never sent to billing" in reason
    after = (await api.get(path, headers=AUTH)).json()["compensations"]
    assert after == [held]


async def test_an_answer_from_a_source_that_is_not_billing_is_dead_lettered_and_changes_nothing(
    api: httpx.AsyncClient, case: dict[str, Any], settings: Settings, producer: AIOKafkaProducer, kafka: Kafka
) -> None:
    path = f"/v1/cases/{case['case_id']}"
    small = {"kind": "credit", "amount": "20.00", "currency": "EUR", "reason": "goodwill"}
    [sent] = (await api.post(f"{path}/compensations", json=small, headers=AGENT)).json()["compensations"]
    assert sent["status"] == "requested"
    forged = {"request_id": sent["request_id"], "reason": "forged to free the agent's limit"}
    await billing_answer(producer, settings, "failed", forged, source="/not-billing")

    reason = await dead_letter_reason(settings, kafka, naming="/not-billing")
    assert "not a billing source this service trusts" in reason
    await billing_answer(producer, settings, "settled", {"request_id": sent["request_id"], "reference": "PAY-9"})

    async def settled() -> list[dict[str, Any]] | None:
        comps: list[dict[str, Any]] = (await api.get(path, headers=AUTH)).json()["compensations"]
        return comps if comps[0]["status"] != "requested" else None

    [landed] = await eventually(settled, what="billing's own answer on the case")
    assert landed["status"] == "settled" and landed["reference"] == "PAY-9"  # the forged failure never landed
