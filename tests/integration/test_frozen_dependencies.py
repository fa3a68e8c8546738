"""Dependencies that stop answering (SIGSTOP): /readyz says so at once, and everything resumes after SIGCONT.

Each test freezes a broker or a database of its own, so the rest of the suite never sees the freeze.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaProducer

from service.adapters.postgres.migrate import migrate
from service.bootstrap import Service, http_app
from service.config import Settings
from service.domain.signals import SignalKind
from service.entrypoints.embedded import start_postgres, start_tansu
from tests.infra import Kafka, unique, with_database
from tests.support import AUTH, eventually, make_settings, publish, signal_event, wait_until_ready

READYZ_GUARD = 10.0  # a hang guard, not a speed target: the probes themselves give up after 1.5 s


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
    return await asyncio.wait_for(client.get("/readyz"), READYZ_GUARD)


async def applied(database_url: str, signal_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM signal_log WHERE signal_id = $1", signal_id))
    finally:
        await conn.close()


async def test_a_frozen_broker_turns_readyz_503_without_hanging_and_intake_resumes_after_it_thaws(
    database_url: str,
) -> None:
    process, bootstrap = start_tansu()
    kafka = Kafka(bootstrap, False, "embedded")
    settings = make_settings(kafka, database_url)
    service = Service(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    try:
        await service.start()
        await wait_until_ready(service)
        await producer.start()
        async with http(service, settings) as client:
            assert (await readyz(client)).status_code == 200
            before = signal_event(SignalKind.NPS, "cust-f", {"score": 1}, signal_id="before-freeze")
            await publish(producer, settings.topic_nps, "cust-f", before)
            await eventually(lambda: applied(database_url, "before-freeze"), what="the first signal")
            with frozen([process.pid]):
                answer = await readyz(client)
                assert answer.status_code == 503
                body = answer.json()
                assert body == {"ready": False, "database": "up", "kafka": "down"}
                cases = await asyncio.wait_for(client.get("/v1/cases", headers=AUTH), READYZ_GUARD)
                assert cases.status_code == 200  # staff keep working cases while Kafka is out
            after = signal_event(SignalKind.NPS, "cust-f", {"score": 1}, signal_id="after-thaw")
            await publish(producer, settings.topic_nps, "cust-f", after)
            await eventually(lambda: applied(database_url, "after-thaw"), what="intake after the thaw")

            async def ready_again() -> bool:
                return (await readyz(client)).status_code == 200

            await eventually(ready_again, what="/readyz 200 after the thaw")
            assert service.alive(), service.failures()
    finally:
        await producer.stop()
        await service.stop()
        process.terminate()
        process.wait(10)


async def test_an_api_only_process_is_ready_with_postgresql_alone_and_says_503_while_it_is_frozen() -> None:
    folder = Path(tempfile.mkdtemp(prefix="recovery-frozen-pg-"))
    server = start_postgres(folder / "data")
    try:
        admin = await asyncpg.connect(server.dsn)
        name = unique("t")
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        database_url = with_database(server.dsn, name)
        conn = await asyncpg.connect(database_url)
        await migrate(conn)
        await conn.close()
        # no broker anywhere: an API-only process never needs one
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers="127.0.0.1:1",
            consume=False,
            relay=False,
            api_tokens=make_settings(Kafka("127.0.0.1:1", False, "none"), database_url).api_tokens,
        )
        service = Service(settings)
        await service.start()
        try:
            async with http(service, settings) as client:
                answer = await readyz(client)
                assert answer.status_code == 200
                assert answer.json() == {"ready": True, "database": "up"}
                postmaster = int((folder / "data" / "postmaster.pid").read_text().split()[0])
                processes = [
                    postmaster,
                    *(p.pid for p in psutil.Process(postmaster).children(recursive=True)),
                ]
                with frozen(processes):
                    frozen_answer = await readyz(client)
                    assert frozen_answer.status_code == 503
                    assert frozen_answer.json() == {"ready": False, "database": "down"}

                async def ready_again() -> bool:
                    return (await readyz(client)).status_code == 200

                await eventually(ready_again, what="/readyz 200 once PostgreSQL answers again")
                assert (await client.get("/v1/cases", headers=AUTH)).status_code == 200
        finally:
            await service.stop()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


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
