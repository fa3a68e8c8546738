"""`recovery publish` through the real broker into a running service, and the moment its consumers join."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from service.bootstrap import Service, http_app
from service.config import Settings
from service.entrypoints.publish import add_commands, send, signal_record
from tests.support import AUTH, eventually


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["publish", *argv])


@pytest.fixture
async def joined_service(settings: Settings) -> AsyncIterator[tuple[Service, list[datetime]]]:
    """A service that records when it says its consumers have joined."""
    joined: list[datetime] = []
    running = Service(settings, on_consumers_joined=lambda: joined.append(datetime.now(UTC)))
    await running.start()
    try:
        yield running, joined
    finally:
        await running.stop()


async def test_the_service_says_once_when_its_signal_consumer_has_joined(
    joined_service: tuple[Service, list[datetime]],
) -> None:
    service, joined = joined_service
    await eventually(lambda: _true(bool(joined)), timeout=120, what="the consumers-joined call")
    assert service.consumer is not None and service.consumer.joined.is_set()
    assert len(joined) == 1


async def test_published_signals_of_both_modes_open_and_escalate_a_case(
    joined_service: tuple[Service, list[datetime]], settings: Settings
) -> None:
    service, joined = joined_service
    await eventually(lambda: _true(bool(joined)), timeout=120, what="the consumers to join")
    review = parse("review", "--customer", "cust-p", "--field", "rating=3", "--mode", "structured")
    complaint = parse(
        "complaint", "--customer", "cust-p", "--field", "text=Nobody came", "--field", "category=safety"
    )
    for args in (review, complaint):
        await send(signal_record(args, settings, datetime.now(UTC)), settings)
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:

        async def escalated() -> dict | None:  # type: ignore[type-arg]
            items = (await api.get("/v1/cases", params={"customer_id": "cust-p"}, headers=AUTH)).json()[
                "items"
            ]
            return items[0] if items and len(items[0]["signals"]) == 2 else None

        case = await eventually(escalated, what="both signals on one case")
    assert [s["type"] for s in case["signals"]] == ["recovery.signal.review", "recovery.signal.complaint"]
    assert case["severity"] == "critical"  # a safety complaint


async def test_a_broker_that_does_not_answer_fails_the_send(settings: Settings) -> None:
    away = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:9"})
    record = signal_record(parse("nps", "--customer", "c", "--field", "score=2"), away, datetime.now(UTC))
    with pytest.raises(KafkaConnectionError):
        await send(record, away)


async def _true(value: bool) -> bool:
    return value
