"""Signals through the real broker into cases in the real database, read back over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from service.adapters.kafka.cloudevents import format_time
from service.config import Settings
from service.domain.severity import load_default_policy
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import AUTH, eventually, publish, signal_event


async def case_of(api: httpx.AsyncClient, customer: str) -> dict | None:  # type: ignore[type-arg]
    page = (await api.get("/v1/cases", params={"customer_id": customer}, headers=AUTH)).json()
    return page["items"][0] if page["items"] else None


async def test_a_binary_nps_signal_opens_a_case_readable_over_http(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    at = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)  # within RECOVERY_MAX_SIGNAL_AGE
    await publish(
        producer, settings.topic_nps, "cust-1", signal_event(SignalKind.NPS, "cust-1", {"score": 2}, at=at)
    )
    case = await eventually(lambda: case_of(api, "cust-1"), what="the case")
    assert case["severity"] == "major"
    assert case["status"] == "open"
    assert case["resolution_deadline"] == format_time(at + timedelta(hours=24))
    assert case["signals"][0]["reasons"] == ["nps:0-3"]
    assert case["signals"][0]["type"] == "recovery.signal.nps"  # the CloudEvents type, not the kind
    assert case["signals"][0]["policy_version"] == load_default_policy().version
    detail = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    types = [e["type"] for e in detail["events"]]
    assert types[0] == "case.opened"
    # the failure happened two days ago: its deadlines have passed, so only SLA events may follow
    assert set(types[1:]) <= {"case.sla_warning", "case.sla_breached"}


async def test_structured_signals_attach_and_escalate_and_duplicates_change_nothing(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    first = signal_event(SignalKind.REVIEW, "cust-2", {"rating": 3}, signal_id="r-1", at=at, structured=True)
    await publish(producer, settings.topic_review, "cust-2", first)
    await publish(producer, settings.topic_review, "cust-2", first)  # redelivered
    await eventually(lambda: case_of(api, "cust-2"), what="the review's case")
    ticket = signal_event(
        SignalKind.TICKET, "cust-2", {"ticket_id": "T-9", "priority": "urgent"}, signal_id="t-1"
    )
    await publish(producer, settings.topic_ticket, "cust-2", ticket)
    await publish(producer, settings.topic_ticket, "cust-2", ticket)

    async def escalated() -> dict | None:  # type: ignore[type-arg]
        case = await case_of(api, "cust-2")
        return case if case and case["severity"] == "major" else None

    case = await eventually(escalated, what="escalation to major")
    detail = (await api.get(f"/v1/cases/{case['case_id']}", headers=AUTH)).json()
    assert [e["type"] for e in detail["events"]] == ["case.opened", "case.signal_attached", "case.escalated"]
    assert [s["id"] for s in detail["signals"]] == ["r-1", "t-1"]
    assert detail["version"] == 3


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_consumer_keeps_going(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka
) -> None:
    await producer.send_and_wait(
        settings.topic_complaint, b"{not json", key=b"cust-3", headers=[("x-trace", b"7")]
    )
    bad_score = signal_event(SignalKind.NPS, "cust-3", {"score": 11})
    await publish(producer, settings.topic_nps, "cust-3", bad_score)
    wrong_topic = signal_event(SignalKind.NPS, "cust-3", {"score": 1})
    await publish(producer, settings.topic_complaint, "cust-3", wrong_topic)
    odd_header = signal_event(SignalKind.NPS, "cust-3", {"score": 3})
    await producer.send_and_wait(
        settings.topic_nps, odd_header[1], key=b"cust-3", headers=[*odd_header[0], ("x-binary", b"\xff\xfe")]
    )
    bad_header = signal_event(SignalKind.NPS, "cust-3", {"score": 3})
    headers = [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in bad_header[0]]
    await producer.send_and_wait(settings.topic_nps, bad_header[1], key=b"cust-3", headers=headers)
    good = signal_event(SignalKind.COMPLAINT, "cust-3", {"text": "The technician never showed up."})
    await publish(producer, settings.topic_complaint, "cust-3", good)
    await eventually(lambda: case_of(api, "cust-3"), what="the good signal's case")

    dlq = AIOKafkaConsumer(
        settings.topic_dlq, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await dlq.start()
    try:
        records: list = []  # type: ignore[type-arg]

        async def three() -> list | None:  # type: ignore[type-arg]
            batch = await dlq.getmany(timeout_ms=500)
            records.extend(r for rs in batch.values() for r in rs)
            return records if len(records) >= 4 else None

        await eventually(three, what="four dead letters")
    finally:
        await dlq.stop()
    by_value = {r.value: dict(r.headers) for r in records}
    assert by_value[b"{not json"]["x-trace"] == b"7"
    assert by_value[b"{not json"]["dlq_topic"] == settings.topic_complaint.encode()
    assert {"dlq_reason", "dlq_partition", "dlq_offset"} <= set(by_value[b"{not json"])
    assert all(r.key == b"cust-3" for r in records)
    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in records)
    assert any("score" in reason for reason in reasons)
    assert any("not accepted on this topic" in reason for reason in reasons)
    assert any("ce_source" in reason and "UTF-8" in reason for reason in reasons)


async def test_requests_without_a_known_token_are_refused(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/cases")).status_code == 401
    wrong = await api.get("/v1/cases", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthenticated"


async def test_metrics_count_signals_by_kind_and_outcome_and_open_cases_by_severity(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }

    before = samples((await api.get("/metrics")).text)
    promoter = signal_event(SignalKind.NPS, "cust-4", {"score": 10})
    detractor = signal_event(SignalKind.NPS, "cust-4", {"score": 0, "customer_tier": "platinum"})
    await publish(producer, settings.topic_nps, "cust-4", promoter)
    await publish(producer, settings.topic_nps, "cust-4", detractor)
    await eventually(lambda: case_of(api, "cust-4"), what="the detractor's case")
    after = samples((await api.get("/metrics")).text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("recovery_signals_total", kind="nps", outcome="not_a_failure") == 1
    assert grew("recovery_signals_total", kind="nps", outcome="opened") == 1
    assert after[("recovery_open_cases", (("severity", "critical"),))] >= 1
    assert grew("recovery_batch_seconds_count") >= 1
    assert any(name == "recovery_consumer_lag_records" for name, _ in after)
