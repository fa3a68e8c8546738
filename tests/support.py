"""Helpers for tests that go through the real broker and database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from service.adapters.kafka.cloudevents import encode_binary, encode_structured
from service.adapters.postgres.data_keys import Keyring, parse_master_keys
from service.api_tokens import ApiToken
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka

T = TypeVar("T")
TOKEN = "test-owner-token-for-the-suite-only"  # tokens are at least 32 characters (RECOVERY_API_TOKENS)
AGENT_TOKEN = "test-agent-token-for-the-suite-only"
MANAGER_TOKEN = "test-manager-token-for-the-suite-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
MANAGER = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
DATA_KEYS = '{"test-1": "dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLW9ubHk="}'  # the suite's master key, 32 bytes
"""RECOVERY_DATA_KEYS of every test's settings: a fixed master key, so a test may read what another wrote."""


async def case_id_of(db: Any, customer_id: str, ordinal: int = 1) -> str:
    """The id of a customer's n-th case, as stored (new cases' ids are keyed: a test cannot compute them)."""
    case_id = await db.fetchval(
        "SELECT case_id FROM cases WHERE customer_id = $1 AND ordinal = $2", customer_id, ordinal
    )
    assert case_id is not None, f"customer {customer_id} has no case {ordinal}"
    return str(case_id)


def suite_keyring() -> Keyring:
    """The customers' keys under the suite's master key (what a store built by hand in a test is given)."""
    return Keyring(parse_master_keys(DATA_KEYS, None))


def make_settings(kafka: Kafka, database_url: str, **overrides: Any) -> Settings:
    """Settings with topics and a group of the test's own, so tests never see each other's records."""
    tag = uuid.uuid4().hex[:8]
    topics = {f"topic_{kind.value}": f"t{tag}.signals.{kind.value}" for kind in SignalKind}
    base: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka.bootstrap,
        "kafka_idempotent_producer": kafka.idempotent_producer,
        "database_url": database_url,
        "consumer_group": f"g{tag}",
        "topic_partitions": 3,
        "topic_dlq": f"t{tag}.signals.dlq",
        "topic_case_events": f"t{tag}.case-events",
        "topic_sla": f"t{tag}.sla",
        "topic_compensation_requests": f"t{tag}.compensation.requests",
        "topic_compensation_results": f"t{tag}.compensation.results",
        "topic_trends": f"t{tag}.trends",
        "topic_incidents": f"t{tag}.incidents",
        "data_keys": DATA_KEYS,
        "api_tokens": {
            TOKEN: ApiToken(actor="tester", role="owner"),
            AGENT_TOKEN: ApiToken(actor="ana", role="agent"),
            MANAGER_TOKEN: ApiToken(actor="mia", role="manager"),
        },
        **topics,
    }
    return Settings(**{**base, **overrides})


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as RECOVERY_* variables, for a service run as a process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        raw = settings.__dict__[name]
        if hasattr(raw, "get_secret_value"):
            value = raw.get_secret_value()
        env[f"RECOVERY_{name.upper()}"] = value if isinstance(value, str) else _json(value)
    return env


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def signal_event(
    kind: SignalKind,
    customer_id: str,
    data: Mapping[str, Any] | None = None,
    *,
    signal_id: str | None = None,
    source: str = "test-upstream",
    at: datetime | None = None,
    structured: bool = False,
) -> tuple[list[tuple[str, bytes]], bytes]:
    encode = encode_structured if structured else encode_binary
    return encode(
        id=signal_id or uuid.uuid4().hex,
        source=source,
        type=f"recovery.signal.{kind.value}",
        subject=customer_id,
        time=at or datetime.now(UTC),
        data={"customer_id": customer_id, **(data or {})},
    )


async def publish(
    producer: AIOKafkaProducer, topic: str, key: str, event: tuple[list[tuple[str, bytes]], bytes]
) -> None:
    headers, body = event
    await producer.send_and_wait(topic, body, key=key.encode(), headers=headers)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 90.0, what: str = "") -> T:
    """Poll until check() returns something truthy, or fail after the deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last={last!r}")


def migration_backfill(name: str) -> str:
    """The one `UPDATE cases …;` with which a migration fills a new column: to run again over chosen rows."""
    text = (resources.files("service.adapters.postgres") / "migrations" / name).read_text(encoding="utf-8")
    found = re.search(r"^UPDATE cases .*?;$", text, re.MULTILINE | re.DOTALL)
    assert found, f"{name} backfills with one UPDATE"
    return found.group(0)


async def relay_caught_up(db: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether the log has events and the relay has published every one of them."""
    head = await db.fetchval("SELECT coalesce(max(position), 0) FROM events")
    position = await db.fetchval("SELECT coalesce(max(position), 0) FROM relay_positions")
    return bool(head) and head == position


async def wait_until_ready(service: Any) -> None:
    """The service's API serves before Kafka is reached: wait until its consumers have joined."""

    async def ready() -> bool:
        return all((await service.ready()).values())

    await eventually(ready, what="the service ready (database and kafka)")


class ServiceProcess:
    """`recovery serve` as a real process, as an operator would run it."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.env = {**os.environ, **settings_env(settings), "RECOVERY_LOG_LEVEL": "INFO"}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> ServiceProcess:
        from service.entrypoints.embedded import free_port

        self.port = free_port()
        env = {**self.env, "RECOVERY_HTTP_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.entrypoints.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def metric(self, name: str) -> float:
        """Sum of a metric's samples as the process exports it now (0 when not reachable)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            async with httpx.AsyncClient(timeout=2) as client:
                text = (await client.get(f"{self.url}/metrics")).text
        except httpx.HTTPError:
            return 0.0
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)

    async def url_ready(self) -> bool:
        """The process answers /readyz with Kafka and the database reachable."""
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class PostgresProxy:
    """A TCP hop in front of the real PostgreSQL that the test can cut and restore (an outage)."""

    def __init__(self, dsn: str) -> None:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(dsn)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self.upstream_unix = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self.upstream_tcp = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.user = parts.username or "postgres"
        self.password = parts.password or ""
        self.database = parts.path.lstrip("/")
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    async def start(self) -> PostgresProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.upstream_unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream_unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream_tcp)
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


def recovery_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's `recovery` command against a database."""
    env = {
        "RECOVERY_DATA_KEYS": DATA_KEYS,
        **os.environ,
        "RECOVERY_DATABASE_URL": database_url,
        "RECOVERY_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "service.entrypoints.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
