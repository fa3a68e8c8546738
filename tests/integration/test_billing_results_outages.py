"""Billing's answers land once each through a PostgreSQL restart, a PostgreSQL outage and a frozen broker.

A third of the answers is published before the interruption, a third while the dependency is away, and
after it is back the second third again (billing re-sends what it is unsure of) and the last third.
Afterwards every compensation request has exactly one settled or failed event, the one billing sent: none
lost (waited out, never dead-lettered), none doubled (a repeated or re-read answer lands nothing), and the
process that lived through it was never restarted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from service.bootstrap import Service, http_app
from service.config import Settings
from tests.infra import Kafka
from tests.integration.conftest import OwnBroker, OwnPostgres
from tests.integration.test_compensation import BILLING, billing_answer, open_by_hand
from tests.support import AUTH, eventually, make_settings, wait_until_ready

CASES, PER_CASE = 3, 4  # twelve requests: four answers before, four while away, four after
OUTAGE_SECONDS = 8.0  # longer than the retry policy's 5 s cap: the results consumer's waits reach the cap
FREEZE_SECONDS = 12.0  # longer than the consumers' 10 s session timeout: the broker may drop them from the group
RESULT_TYPES = ("case.compensation_settled", "case.compensation_failed")


@dataclass(frozen=True)
class Answer:
    case_id: str
    request_id: str
    settled: bool

    @property
    def detail(self) -> str:
        return f"PAY-{self.request_id}" if self.settled else f"card expired ({self.request_id})"

    @property
    def data(self) -> dict[str, str]:
        return {"request_id": self.request_id, ("reference" if self.settled else "reason"): self.detail}

    @property
    def status(self) -> str:
        return "settled" if self.settled else "failed"


def billing_settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(kafka, database_url, database_pool_size=3, billing_sources=[BILLING])


async def requests_sent_to_billing(api: httpx.AsyncClient) -> list[Answer]:
    """Hand-opened cases with a stake, each with PER_CASE credits the owner grants at once; billing's answers
    to them alternate between settled and failed, interleaved across the cases."""
    requests: list[list[tuple[str, str]]] = []
    for n in range(CASES):
        case_id = await open_by_hand(api, f"billing-outage-{n}", stake="1000")
        credit = {"kind": "credit", "amount": "10.00", "currency": "EUR", "reason": "goodwill"}
        for _ in range(PER_CASE):
            answer = await api.post(f"/v1/cases/{case_id}/compensations", json=credit, headers=AUTH)
            assert answer.status_code == 200, answer.text
        compensations = answer.json()["compensations"]
        assert [c["status"] for c in compensations] == ["requested"] * PER_CASE
        requests.append([(case_id, c["request_id"]) for c in compensations])
    interleaved = [pair for per_case in zip(*requests, strict=True) for pair in per_case]
    return [Answer(case_id, rid, i % 2 == 0) for i, (case_id, rid) in enumerate(interleaved)]


async def answer(producer: AIOKafkaProducer, settings: Settings, answers: list[Answer]) -> None:
    for a in answers:
        await billing_answer(producer, settings, a.status, a.data)


@dataclass(frozen=True)
class Shown:
    """What the cases show: each request as the API renders it, and billing's outcomes in the event logs."""

    requests: dict[str, dict[str, Any]]
    outcomes: Counter[tuple[str, str]]  # (request id, event type)


async def landed(api: httpx.AsyncClient, answers: list[Answer]) -> Shown | None:
    """The answered requests' cases as they are now, once every request has an outcome (None before)."""
    requests: dict[str, dict[str, Any]] = {}
    outcomes: Counter[tuple[str, str]] = Counter()
    for case_id in dict.fromkeys(a.case_id for a in answers):
        read = await api.get(f"/v1/cases/{case_id}", headers=AUTH)
        if read.status_code != 200:  # PostgreSQL still coming back
            return None
        requests |= {c["request_id"]: c for c in read.json()["compensations"]}
        events = read.json()["events"]
        outcomes.update((e["data"]["request_id"], e["type"]) for e in events if e["type"] in RESULT_TYPES)
    done = all(requests[a.request_id]["status"] in ("settled", "failed") for a in answers)
    return Shown(requests, outcomes) if done else None


async def each_landed_once(api: httpx.AsyncClient, answers: list[Answer]) -> None:
    """Every answer on its request, each as billing sent it, and one outcome event per request, no more."""
    shown = await eventually(lambda: landed(api, answers), what="every billing answer on its case")
    for a in answers:
        request = shown.requests[a.request_id]
        assert request["status"] == a.status
        assert request["reference" if a.settled else "failure"] == a.detail
    assert shown.outcomes == Counter({(a.request_id, f"case.compensation_{a.status}"): 1 for a in answers})


async def through_an_interruption(
    service: Service,
    settings: Settings,
    producer: AIOKafkaProducer,
    interrupt: Callable[[], Awaitable[None]],
    noticed: Callable[[], Awaitable[bool]],
    away: Callable[[list[Answer]], Awaitable[None]],
    resume: Callable[[], Awaitable[None]],
) -> None:
    """Answers before (landed first), an interruption, answers while away (`away` publishes them and holds the
    dependency away), the dependency back, answers after; then each request's one outcome, by the same process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=http_app(service, settings)), base_url="http://api"
    ) as api:
        answers = await requests_sent_to_billing(api)
        third = len(answers) // 3
        before, during, after = answers[:third], answers[third : 2 * third], answers[2 * third :]
        await answer(producer, settings, before)
        await each_landed_once(api, before)
        await interrupt()
        await eventually(noticed, what="the interruption noticed")
        await away(during)
        assert service.alive(), service.failures()
        await resume()
        # Billing cannot know that its answers sent meanwhile landed: it sends them again before the new ones.
        # All answers share one key, so one partition read in order: once the new ones have landed, the
        # repeated ones have been read too.
        await answer(producer, settings, [*during, *after])
        await each_landed_once(api, answers)
        assert service.alive(), service.failures()


@pytest.mark.parametrize("away_seconds", [0.0, OUTAGE_SECONDS], ids=["restart", "outage"])
async def test_billing_answers_land_once_each_through_a_postgresql_restart_or_outage(
    kafka: Kafka, own_postgres: OwnPostgres, producer: AIOKafkaProducer, away_seconds: float
) -> None:
    settings = billing_settings(kafka, own_postgres.dsn)
    service = Service(settings)

    async def interrupt() -> None:
        await asyncio.to_thread(own_postgres.stop)

    async def database_down() -> bool:
        return not (await service.ready())["database"]

    async def away(during: list[Answer]) -> None:
        await answer(producer, settings, during)
        # Holding PostgreSQL away is the scenario itself (the consumer retries meanwhile), not a synchronisation.
        await asyncio.sleep(away_seconds)

    async def resume() -> None:
        await asyncio.to_thread(own_postgres.start)

    try:
        await service.start()
        await wait_until_ready(service)
        await through_an_interruption(service, settings, producer, interrupt, database_down, away, resume)
    finally:
        await service.stop()


async def test_billing_answers_land_once_each_through_a_frozen_broker(
    own_broker: OwnBroker, database_url: str
) -> None:
    settings = billing_settings(own_broker.kafka, database_url)
    service = Service(settings)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.kafka.bootstrap, enable_idempotence=False)
    sending: list[asyncio.Task[None]] = []

    async def interrupt() -> None:
        own_broker.freeze()

    async def kafka_down() -> bool:
        return not (await service.ready())["kafka"]

    async def away(during: list[Answer]) -> None:
        # Billing sends while the broker is frozen: its sends complete once the broker thaws.
        sending.append(asyncio.create_task(answer(producer, settings, during)))
        # Holding the broker frozen is the scenario itself, not a synchronisation.
        await asyncio.sleep(FREEZE_SECONDS)
        assert not sending[0].done(), "an answer was taken by a frozen broker"

    async def resume() -> None:
        own_broker.thaw()
        await asyncio.wait_for(sending[0], 60)

    try:
        await producer.start()
        await service.start()
        await wait_until_ready(service)
        await through_an_interruption(service, settings, producer, interrupt, kafka_down, away, resume)
    finally:
        own_broker.thaw()
        for task in sending:
            task.cancel()
        await producer.stop()
        await service.stop()
