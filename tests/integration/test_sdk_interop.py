"""The official CloudEvents SDK against the running service and the real broker, both ways, and the examples.

SDK-made signals of every kind, in both content modes, become cases; every record the service publishes parses
with the SDK's Kafka binding; and examples/publisher.py and examples/billing_service.py run end to end: the
publisher's signals open a case, and a compensation requested over HTTP is paid by the example billing service,
whose answer lands on the case.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from examples.billing_service import run_billing
from examples.publisher import KINDS, publish_all, signal_data
from service.adapters.kafka.outgoing import SOURCE
from service.bootstrap import Service
from service.config import Settings
from tests.infra import Kafka
from tests.support import AGENT, AUTH, MANAGER, eventually, make_settings

MODES = {"binary": ce_kafka.to_binary_event, "structured": ce_kafka.to_structured_event}
FAST_SLA = {s: "PT4S" for s in ("minor", "moderate", "major", "critical")}
FAST_FIRST_RESPONSE = {c: "PT2S" for c in ("phone", "email", "chat", "social", "web", "in_person")}


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    """Short SLA windows and a trend at one case, so that every outgoing topic gets a record quickly."""
    return make_settings(
        kafka,
        database_url,
        sla_resolution=FAST_SLA,
        sla_first_response=FAST_FIRST_RESPONSE,
        sla_warning_fraction=0.5,
        trend_threshold=1,
    )


def topic_of(settings: Settings, kind: str) -> str:
    topic: str = getattr(settings, f"topic_{kind}")
    return topic


async def send(producer: AIOKafkaProducer, topic: str, message: ce_kafka.KafkaMessage) -> None:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    await producer.send_and_wait(topic, message.value, key=key, headers=list(message.headers.items()))


async def case_of(api: httpx.AsyncClient, customer: str) -> dict[str, Any] | None:
    items = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AUTH)).json()["items"]
    if not items:
        return None
    detail: dict[str, Any] = (await api.get(f"/v1/cases/{items[0]['case_id']}", headers=AUTH)).json()
    return detail


async def test_signals_the_sdk_makes_of_every_kind_in_both_modes_become_cases(
    service: Service, api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    sent: dict[str, CloudEvent] = {}
    for kind in KINDS:
        for mode, encode in MODES.items():
            customer = f"sdk-{kind}-{mode}"
            event = CloudEvent(
                attributes={
                    "source": "/sdk-interop",
                    "type": f"recovery.signal.{kind}",
                    "subject": customer,
                    "datacontenttype": "application/json",
                },
                data=signal_data(kind, customer),
            )
            await send(
                producer, topic_of(settings, kind), encode(event, key_mapper=lambda e: e.get_subject())
            )
            sent[customer] = event

    async def all_cases() -> dict[str, dict[str, Any]] | None:
        found = {customer: await case_of(api, customer) for customer in sent}
        cases = {customer: case for customer, case in found.items() if case is not None}
        return cases if len(cases) == len(sent) else None

    cases = await eventually(all_cases, what="a case for each SDK-made signal")
    for customer, event in sent.items():
        [signal] = cases[customer]["signals"]
        assert (signal["source"], signal["id"], signal["type"]) == (
            "/sdk-interop",
            event.get_id(),
            event.get_type(),
        )
        assert cases[customer]["customer_id"] == customer and cases[customer]["status"] == "open"


class Topics:
    """Everything on some topics since the start, read as a plain consumer would."""

    def __init__(self, kafka: Kafka, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
        )
        self.records: dict[str, list[Any]] = {topic: [] for topic in topics}

    async def each_has_one(self) -> bool:
        for records in (await self.consumer.getmany(timeout_ms=300)).values():
            for record in records:
                self.records[record.topic].append(record)
        return all(self.records.values())


async def resolve_case(api: httpx.AsyncClient, customer: str) -> str:
    case = await eventually(lambda: case_of(api, customer), what=f"the case of {customer}")
    body = {"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "buffers"}
    answer = await api.post(f"/v1/cases/{case['case_id']}/resolve", json=body, headers=MANAGER)
    assert answer.status_code == 200, answer.text
    return str(case["case_id"])


async def test_every_record_the_service_publishes_parses_with_the_sdk(
    service: Service, api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka
) -> None:
    for customer in ("sdk-out-paid", "sdk-out-resolved"):
        event = CloudEvent(
            attributes={"source": "/sdk-interop", "type": "recovery.signal.complaint", "subject": customer},
            data=signal_data("complaint", customer),
        )
        await send(
            producer,
            settings.topic_complaint,
            ce_kafka.to_binary_event(event, key_mapper=lambda e: e.get_subject()),
        )
    paid = await eventually(lambda: case_of(api, "sdk-out-paid"), what="the case to compensate")
    body = {"kind": "credit", "amount": "40.00", "currency": "EUR", "reason": "goodwill"}
    path = f"/v1/cases/{paid['case_id']}/compensations"
    assert (await api.post(path, json=body, headers={**AGENT, "Idempotency-Key": "sdk-1"})).status_code == 200
    await resolve_case(api, "sdk-out-resolved")  # a trend at threshold one

    prefixes = {
        settings.topic_case_events: "recovery.case.",
        settings.topic_sla: "recovery.sla.",
        settings.topic_compensation_requests: "recovery.compensation.requested",
        settings.topic_trends: "recovery.rootcause.trend_detected",
    }
    topics = Topics(kafka, list(prefixes))
    await topics.consumer.start()
    try:
        await eventually(topics.each_has_one, what="a record on every outgoing topic")
    finally:
        await topics.consumer.stop()
    for topic, records in topics.records.items():
        for record in records:
            headers = {name: value for name, value in record.headers}
            event = ce_kafka.from_kafka_event(
                ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
            )
            assert event.get_specversion() == "1.0" and event.get_source() == SOURCE
            assert event.get_id() == headers["ce_id"].decode() and event.get_type().startswith(
                prefixes[topic]
            )
            assert event.get_subject() == record.key.decode() == event.get_extension("partitionkey")
            time = event.get_time()
            assert time is not None and time.utcoffset() is not None and time <= datetime.now(UTC)
            assert event.get_datacontenttype() == "application/json"
            assert event.get_data() == json.loads(record.value)
    [request] = topics.records[settings.topic_compensation_requests]
    assert json.loads(request.value)["case_id"] == paid["case_id"] == request.key.decode()


async def test_the_examples_publish_every_kind_and_pay_a_compensation_that_lands_on_the_case(
    service: Service, api: httpx.AsyncClient, settings: Settings, kafka: Kafka
) -> None:
    customer = f"example-{uuid.uuid4().hex[:6]}"
    topics = {kind: topic_of(settings, kind) for kind in KINDS}
    sent = await publish_all(kafka.bootstrap, customer, topics)
    assert [topic for topic, _ in sent] == [topics[kind] for kind in KINDS]

    async def all_five() -> dict[str, Any] | None:
        case = await case_of(api, customer)
        return case if case and len(case["signals"]) == len(KINDS) else None

    case = await eventually(all_five, what="one case with the publisher's five signals")
    assert {s["type"] for s in case["signals"]} == {f"recovery.signal.{kind}" for kind in KINDS}
    path = f"/v1/cases/{case['case_id']}/compensations"
    small = {"kind": "credit", "amount": "40.00", "currency": "EUR", "reason": "goodwill"}
    large = {"kind": "refund", "amount": "60.00", "currency": "EUR", "reason": "repair cost"}
    await api.post(path, json=small, headers={**AGENT, "Idempotency-Key": "ex-1"})
    answer = await api.post(path, json=large, headers={**MANAGER, "Idempotency-Key": "ex-2"})
    assert [c["status"] for c in answer.json()["compensations"]] == ["requested", "requested"], answer.text
    paid, refused = (c["request_id"] for c in answer.json()["compensations"])

    stop = asyncio.Event()
    billing = asyncio.create_task(
        run_billing(
            kafka.bootstrap,
            requests_topic=settings.topic_compensation_requests,
            results_topic=settings.topic_compensation_results,
            group_id=f"billing-{uuid.uuid4().hex[:6]}",
            fail_above=Decimal("50"),
            mode="structured",
            stop=stop,
        )
    )
    try:

        async def answered() -> list[dict[str, Any]] | None:
            if billing.done():
                billing.result()  # the billing loop ended early: raise its error here
            found = await case_of(api, customer)
            comps = found["compensations"] if found else []
            return comps if {c["status"] for c in comps} == {"settled", "failed"} else None

        comps = {c["request_id"]: c for c in await eventually(answered, what="billing's answers on the case")}
    finally:
        stop.set()
        answers = await asyncio.wait_for(billing, 30)
    assert set(answers) == {paid, refused}
    assert answers[paid].settled and comps[paid]["status"] == "settled"
    assert comps[paid]["reference"] == answers[paid].detail and answers[paid].detail.startswith("PAY-")
    assert not answers[refused].settled and comps[refused]["status"] == "failed"
    assert (
        comps[refused]["failure"] == answers[refused].detail
        and "above the demo limit" in comps[refused]["failure"]
    )
