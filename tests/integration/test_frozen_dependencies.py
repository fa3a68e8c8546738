"""Dependencies that stop answering (SIGSTOP) or are gone (stopped): /readyz names the one that is down within
two seconds, the API serves on, and everything resumes by itself once it is back.

Each test freezes or stops a broker or a database of its own, so the rest of the suite never sees it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from service.adapters.kafka.topics import ensure_topics
from service.adapters.postgres.migrate import migrate
from service.bootstrap import Service, http_app
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.integration.conftest import OwnBroker, OwnPostgres
from tests.integration.test_compensation import open_by_hand
from tests.support import (
    AUTH,
    eventually,
    make_settings,
    publish,
    relay_caught_up,
    signal_event,
    wait_until_ready,
)

READYZ_PROMISE = 2.0  # what /readyz promises whatever a dependency does (its probes give up after 1.5 s)
KAFKA_DOWN = {"ready": False, "database": "up", "kafka": "down"}


@contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@asynccontextmanager
async def http(service: Service, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


async def readyz(client: httpx.AsyncClient) -> httpx.Response:
    """/readyz's answer; the test fails when it takes longer than the promise."""
    try:
        return await asyncio.wait_for(client.get("/readyz"), READYZ_PROMISE)
    except TimeoutError:
        raise AssertionError(f"/readyz did not answer within {READYZ_PROMISE} s") from None


async def ready_again(client: httpx.AsyncClient) -> httpx.Response:
    async def ready() -> httpx.Response | None:
        answer = await readyz(client)
        return answer if answer.status_code == 200 else None

    return await eventually(ready, what="/readyz 200 again")


async def applied(database_url: str, signal_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM signal_log WHERE signal_id = $1", signal_id))
    finally:
        await conn.close()


@asynccontextmanager
async def producing(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.idempotent_producer
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def intake_works(settings: Settings, kafka: Kafka, signal_id: str) -> None:
    """A signal published now is applied (the consumer has joined its group on this broker)."""
    async with producing(kafka) as producer:
        event = signal_event(SignalKind.NPS, f"cust-{signal_id}", {"score": 1}, signal_id=signal_id)
        await publish(producer, settings.topic_nps, f"cust-{signal_id}", event)
    await eventually(lambda: applied(settings.database_url.get_secret_value(), signal_id), what=signal_id)


async def test_a_frozen_broker_turns_readyz_503_within_two_seconds_and_intake_resumes_after_it_thaws(
    own_broker: OwnBroker, database_url: str
) -> None:
    settings = make_settings(own_broker.kafka, database_url)
    service = Service(settings)
    try:
        await service.start()
        await wait_until_ready(service)
        async with http(service, settings) as client:
            assert (await readyz(client)).status_code == 200
            await intake_works(settings, own_broker.kafka, "before-freeze")
            own_broker.freeze()
            try:
                answer = await readyz(client)
                assert answer.status_code == 503 and answer.json() == KAFKA_DOWN
                cases = await asyncio.wait_for(client.get("/v1/cases", headers=AUTH), READYZ_PROMISE)
                assert cases.status_code == 200  # staff keep working cases while Kafka is out
            finally:
                own_broker.thaw()
            await intake_works(settings, own_broker.kafka, "after-thaw")
            await ready_again(client)
            assert service.alive(), service.failures()
    finally:
        await service.stop()


async def test_a_stopped_broker_turns_readyz_503_within_two_seconds_and_intake_resumes_once_it_is_back(
    own_broker: OwnBroker, database_url: str
) -> None:
    settings = make_settings(own_broker.kafka, database_url)
    service = Service(settings)
    try:
        await service.start()
        await wait_until_ready(service)
        async with http(service, settings) as client:
            own_broker.stop()
            answer = await readyz(client)
            assert answer.status_code == 503 and answer.json() == KAFKA_DOWN
            assert (await client.get("/v1/cases", headers=AUTH)).status_code == 200
            own_broker.start()
            # A durable broker keeps its topics through a restart; Tansu keeps none: put them back as they were.
            await ensure_topics(settings, settings.all_topics())
            await ready_again(client)
            await intake_works(settings, own_broker.kafka, "after-restart")
            assert service.alive(), service.failures()
    finally:
        await service.stop()


async def test_an_api_only_process_is_ready_with_postgresql_alone_and_says_503_within_two_seconds_while_it_is_frozen(
    own_postgres: OwnPostgres,
) -> None:
    # no broker anywhere: an API-only process never needs one
    settings = Settings(
        database_url=own_postgres.dsn,
        kafka_bootstrap_servers="127.0.0.1:1",
        consume=False,
        relay=False,
        api_tokens=make_settings(Kafka("127.0.0.1:1", False, "none"), own_postgres.dsn).api_tokens,
    )
    service = Service(settings)
    await service.start()
    try:
        async with http(service, settings) as client:
            answer = await readyz(client)
            assert answer.status_code == 200 and answer.json() == {"ready": True, "database": "up"}
            with frozen(own_postgres.processes()):
                frozen_answer = await readyz(client)
                assert frozen_answer.status_code == 503
                assert frozen_answer.json() == {"ready": False, "database": "down"}
            await ready_again(client)
            assert (await client.get("/v1/cases", headers=AUTH)).status_code == 200
    finally:
        await service.stop()


async def test_a_stopped_postgresql_turns_readyz_503_within_two_seconds_and_200_once_it_is_started_again(
    kafka: Kafka, own_postgres: OwnPostgres
) -> None:
    settings = make_settings(kafka, own_postgres.dsn)
    service = Service(settings)
    try:
        await service.start()
        await wait_until_ready(service)
        async with http(service, settings) as client:
            await asyncio.to_thread(own_postgres.stop)
            answer = await readyz(client)
            assert answer.status_code == 503
            assert answer.json() == {"ready": False, "database": "down", "kafka": "up"}
            await asyncio.to_thread(own_postgres.start)
            assert (await ready_again(client)).json() == {"ready": True, "database": "up", "kafka": "up"}
            assert (await client.get("/v1/cases", headers=AUTH)).status_code == 200
            await intake_works(settings, kafka, "after-postgresql-restart")
            assert service.alive(), service.failures()
    finally:
        await service.stop()


async def test_a_service_started_while_kafka_is_down_serves_the_api_and_joins_its_group_once_the_broker_is_up(
    own_broker: OwnBroker, database_url: str
) -> None:
    own_broker.stop()
    settings = make_settings(own_broker.kafka, database_url)
    service = Service(settings)
    try:
        await asyncio.wait_for(service.start(), 30)  # PostgreSQL answers: start-up does not wait for Kafka
        async with http(service, settings) as client:
            answer = await readyz(client)
            assert answer.status_code == 503 and answer.json() == KAFKA_DOWN
            case_id = await open_by_hand(client, "cust-by-hand")
            assert (await client.get(f"/v1/cases/{case_id}", headers=AUTH)).status_code == 200
            listed = (await client.get("/v1/cases", headers=AUTH)).json()["items"]
            assert [c["case_id"] for c in listed] == [case_id]
            assert (await readyz(client)).json() == KAFKA_DOWN  # still: the API served without Kafka
            own_broker.start()
            await ready_again(client)
            await intake_works(settings, own_broker.kafka, "after-the-broker-came")
            by_signal = {"customer_id": "cust-after-the-broker-came"}
            assert len((await client.get("/v1/cases", params=by_signal, headers=AUTH)).json()["items"]) == 1
            conn = await asyncpg.connect(database_url)
            try:  # the case opened by hand while Kafka was away is published too
                await eventually(lambda: relay_caught_up(conn), what="the relay at the head of the log")
            finally:
                await conn.close()
            assert service.alive(), service.failures()
    finally:
        await service.stop()


async def test_a_loop_that_stops_on_an_error_of_its_own_turns_healthz_503_naming_it(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    await conn.close()
    settings = Settings(database_url=database_url, consume=False, relay=False)
    service = Service(settings)
    await service.start()
    try:
        async with http(service, settings) as client:
            assert (await client.get("/healthz")).json() == {"status": "alive"}

            async def broken_loop() -> None:
                raise OverflowError("a bug in the loop itself")

            service._run("sla-timers", broken_loop())

            async def unhealthy() -> httpx.Response | None:
                answer = await client.get("/healthz")
                return answer if answer.status_code == 503 else None

            answer = await eventually(unhealthy, what="/healthz 503")
            assert answer.json() == {"status": "failed", "failed": ["sla-timers: OverflowError"]}
    finally:
        await service.stop()
