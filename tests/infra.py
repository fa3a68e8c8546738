"""Where the tests' real broker and database come from: env address → testcontainers → embedded."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Kafka:
    bootstrap: str
    idempotent_producer: bool
    origin: str


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable engine
        return False


@contextmanager
def kafka_broker() -> Iterator[Kafka]:
    if address := os.environ.get("RECOVERY_TEST_KAFKA_BOOTSTRAP"):
        yield Kafka(address, os.environ.get("RECOVERY_TEST_KAFKA_IDEMPOTENT", "true") == "true", "env")
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield Kafka(container.get_bootstrap_server(), True, "testcontainers")
    else:
        from service.entrypoints.embedded import start_tansu

        process, bootstrap = start_tansu()
        try:
            yield Kafka(bootstrap, False, "embedded")
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A server DSN whose role may CREATE DATABASE."""
    if dsn := os.environ.get("RECOVERY_TEST_DATABASE_URL"):
        yield dsn
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        from service.entrypoints.embedded import start_postgres

        folder = Path(tempfile.mkdtemp(prefix="recovery-pg-"))
        server = start_postgres(folder / "data")
        try:
            yield server.dsn
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
