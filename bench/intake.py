"""`make bench`: the service's end-to-end intake rate beside the raw limits of this machine, in one run.

Measured side by side on the embedded broker and database (shared, noisy machines: read the ratios):
  (a) end to end: `recovery serve` as a process drains a backlog of N mixed signals; signals applied per
      second from the moment its consumer group has settled until the last signal is in the store, and
      from process start; peak RSS; CPU seconds of the service, PostgreSQL and the broker; then the
      same with the relay and SLA timers in a process of their own (RECOVERY_RELAY=false beside
      RECOVERY_CONSUME=false), and with two instances in one group, each on a fresh copy of the backlog;
  (b) raw limits: aiokafka reading the same records with no processing, and asyncpg COPY of N event rows;
  (c) the per-signal baseline: the same service with batches of one record, on a smaller sample.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.signal_mix import publish_mix, signal_mix
from service.adapters.postgres.migrate import migrate
from service.config import Settings
from service.domain.signals import SignalKind
from service.entrypoints.embedded import free_port, start_postgres, start_tansu


@contextmanager
def embedded(with_broker: bool = True) -> Iterator[tuple[str, str]]:
    """A throwaway embedded broker and PostgreSQL: (bootstrap address or "", server DSN)."""
    folder = Path(tempfile.mkdtemp(prefix="recovery-bench-"))
    broker, bootstrap = start_tansu() if with_broker else (None, "")
    postgres = start_postgres(folder / "postgres")
    try:
        yield bootstrap, postgres.dsn
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(10)
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def say(text: str) -> None:
    print(text, flush=True)


def topics_for(tag: str) -> dict[str, SignalKind]:
    return {f"bench{tag}.signals.{kind.value}": kind for kind in SignalKind}


async def fresh_database(server_dsn: str) -> str:
    from tests.infra import with_database

    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = with_database(server_dsn, name)
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    return dsn


async def publish(bootstrap: str, topics: dict[str, SignalKind], count: int, customers: int) -> float:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    # live traffic: failures signalled in the last minutes, so no SLA clock runs out during the measurement
    signals = list(signal_mix(count, customers, seed=42, start=datetime.now(UTC) - timedelta(minutes=5)))
    step = max(count // 5, 1)
    for at in range(0, count, step):
        await publish_mix(producer, topics, signals[at : at + step])
        say(f"  published {min(at + step, count):>7,} / {count:,}")
    await producer.stop()
    return count / (time.perf_counter() - started)


async def raw_consume(bootstrap: str, topics: dict[str, SignalKind], count: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", max_poll_records=5000
    )
    await consumer.start()
    consumer.assign([TopicPartition(t, p) for t in topics for p in range(6)])
    seen, started = 0, time.perf_counter()
    while seen < count:
        batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
        seen += sum(len(records) for records in batch.values())
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return count / elapsed


async def raw_copy(dsn: str, count: int) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE copy_bench (LIKE events INCLUDING DEFAULTS)")
    data = '{"case_id": "%s", "type": "case.signal_attached", "signal": {"source": "bench", "id": "sig-%d"}}'
    rows = [
        (f"case-{n % 10_000}", n // 10_000 + 1, uuid.uuid4(), "case.signal_attached", data % (n, n))
        for n in range(count)
    ]
    started = time.perf_counter()
    await conn.copy_records_to_table(
        "copy_bench", records=rows, columns=["stream_id", "version", "event_id", "type", "data"]
    )
    elapsed = time.perf_counter() - started
    await conn.close()
    return count / elapsed


def cpu_seconds(name: str) -> float:
    """CPU time used so far by every process whose name starts with `name`."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if (p.info["name"] or "").startswith(name) and p.info["cpu_times"]:
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


ONE = [{}]  # one instance running everything
SPLIT = [{"RECOVERY_RELAY": "false"}, {"RECOVERY_CONSUME": "false"}]  # consumers | relay and timers
TWO = [{}, {}]  # two instances in one consumer group


async def end_to_end(
    bootstrap: str,
    dsn: str,
    topics: dict[str, SignalKind],
    count: int,
    batch: int,
    roles: list[dict[str, str]] = ONE,
    build: str | None = None,
) -> tuple[float, float, int]:
    """(signals/s once the group has settled until the last is stored, signals/s from process start, peak RSS).

    Each process is a `recovery serve` with the given extra settings, in the same consumer group; `build` is
    the folder of another checkout to run instead of this one (bench/compare.py).
    """
    cpu_before = {name: cpu_seconds(name) for name in ("postgres", "tansu")}
    psutil.cpu_percent()
    steal_before = getattr(psutil.cpu_times(), "steal", 0.0)
    group = f"bench-{uuid.uuid4().hex[:6]}"
    ports = [free_port() for _ in roles]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service.entrypoints.cli", "serve"],
            env={**os.environ, **service_env(bootstrap, dsn, topics, batch, group, port), **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=build,
        )
        for port, extra in zip(ports, roles, strict=True)
    ]
    consumers = [
        port for port, extra in zip(ports, roles, strict=True) if extra.get("RECOVERY_CONSUME") != "false"
    ]
    if os.environ.get("BENCH_PYSPY"):  # optional profile: BENCH_PYSPY=out.json make bench
        pyspy = ["py-spy", "record", "-o", os.environ["BENCH_PYSPY"], "-f", "speedscope", "-d", "30"]
        subprocess.Popen(
            [*pyspy, "-p", str(processes[0].pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    conn = await asyncpg.connect(dsn)
    settled_at: float | None = None
    settled_count = 0
    peak = 0
    last_report = 0.0
    try:
        while True:
            # the offsets move in the transaction that stores the signals, and their table is tiny: polling
            # it costs the database nothing, where count(*) over the signal log would compete with the service
            applied = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = $1",
                group,
            )
            now = time.perf_counter()
            peak = max([peak, *(peak_rss(p.pid) for p in processes)])
            if settled_at is None and await assigned(consumers) == 6 * len(topics):
                settled_at, settled_count = now, applied
            if now - last_report > 2:
                say(f"  applied {applied:>7,} / {count:,}")
                last_report = now
            if applied >= count:
                break
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a service process exited during the benchmark")
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        stored = await conn.fetchval("SELECT count(*) FROM signal_log")
        assert stored == count, f"{stored} signals stored for {count} published"
        service_cpu = [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in processes]
        used = {name: cpu_seconds(name) - before for name, before in cpu_before.items()}
        steal = getattr(psutil.cpu_times(), "steal", 0.0) - steal_before
        say(
            "  CPU seconds per 1,000 signals: service "
            + " + ".join(f"{1000 * c / count:.3f}" for c in service_cpu)
            + f", postgres {1000 * used['postgres'] / count:.3f}, broker {1000 * used['tansu'] / count:.3f};"
            f" machine {psutil.cpu_percent():.0f}% busy, {steal:.1f} s stolen by the hypervisor"
        )
    finally:
        await conn.close()
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(30)
    if settled_at is None:  # a small backlog drained before the group settled: count from the start
        settled_at, settled_count = started, 0
    steady = (count - settled_count) / max(done - settled_at, 1e-9)
    return steady, count / (done - started), peak


async def assigned(ports: list[int]) -> float:
    """Partitions the instances hold now, from their /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    async with httpx.AsyncClient(timeout=1) as client:
        for port in ports:
            try:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                return 0.0
            for family in text_string_to_metric_families(text):
                total += sum(s.value for s in family.samples if s.name == "recovery_assigned_partitions")
    return total


def service_env(
    bootstrap: str, dsn: str, topics: dict[str, SignalKind], batch: int, group: str, port: int
) -> dict[str, str]:
    kinds = {kind: topic for topic, kind in topics.items()}
    env = {
        "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RECOVERY_KAFKA_IDEMPOTENT_PRODUCER": "false",
        "RECOVERY_DATABASE_URL": dsn,
        "RECOVERY_HTTP_PORT": str(port),
        "RECOVERY_CONSUMER_GROUP": group,
        "RECOVERY_BATCH_MAX_RECORDS": str(batch),
        "RECOVERY_TOPIC_DLQ": f"{next(iter(topics))}.dlq",
        "RECOVERY_LOG_LEVEL": "WARNING",
        "RECOVERY_DATA_KEYS": '{"bench": "YmVuY2gtbWFzdGVyLWtleS1vZi0zMi1ieXRlcy1vayE="}',  # 32 bytes; an older build ignores it
    }
    for kind, topic in kinds.items():
        env[f"RECOVERY_TOPIC_{kind.value.upper()}"] = topic
    return env


def peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def main(count: int, customers: int, baseline: int) -> None:
    Settings()  # fail early on a bad RECOVERY_* variable
    with embedded() as (bootstrap, server_dsn):
        say(
            f"machine: {os.cpu_count()} cores; embedded Tansu broker and PostgreSQL; {count:,} signals for {customers:,} customers"
        )
        topics = topics_for(uuid.uuid4().hex[:6])
        say("publishing the backlog")
        publish_rate = await publish(bootstrap, topics, count, customers)
        say("(b) raw limits")
        consume_rate = await raw_consume(bootstrap, topics, count)
        say(f"  aiokafka consume, no processing: {consume_rate:>10,.0f} records/s")
        copy_rate = await raw_copy(await fresh_database(server_dsn), count)
        say(f"  asyncpg COPY of event rows:      {copy_rate:>10,.0f} rows/s")
        say("(a) end to end: recovery serve draining the backlog")
        batch = int(os.environ.get("BENCH_BATCH", "2000"))
        steady, overall, rss = await end_to_end(
            bootstrap, await fresh_database(server_dsn), topics, count, batch
        )
        say("(a2) end to end, relay and timers in a process of their own (a fresh copy of the backlog)")
        split_topics = topics_for(uuid.uuid4().hex[:6])
        await publish(bootstrap, split_topics, count, customers)
        split, _, _ = await end_to_end(
            bootstrap, await fresh_database(server_dsn), split_topics, count, batch, SPLIT
        )
        say("(a3) end to end with two instances in one consumer group (a fresh copy of the backlog)")
        twin_topics = topics_for(uuid.uuid4().hex[:6])
        await publish(bootstrap, twin_topics, count, customers)
        twin, _, twin_rss = await end_to_end(
            bootstrap, await fresh_database(server_dsn), twin_topics, count, batch, TWO
        )
        base_rate = None
        if baseline:
            say(f"(c) baseline: batches of one record, {baseline:,} signals")
            small = topics_for(uuid.uuid4().hex[:6])
            await publish(bootstrap, small, baseline, max(baseline // 10, 1))
            base_rate, _, _ = await end_to_end(
                bootstrap, await fresh_database(server_dsn), small, baseline, 1
            )
        say("\nresults")
        say(f"  publish (setup, not a target)       {publish_rate:>10,.0f} signals/s")
        say(f"  end to end, one instance, steady    {steady:>10,.0f} signals/s   (one process: one core)")
        say(f"  end to end, one instance, start-up  {overall:>10,.0f} signals/s")
        say(f"  end to end, relay in its own process {split:>9,.0f} signals/s")
        say(
            f"  end to end, two instances, steady   {twin:>10,.0f} signals/s   (target >= 5,000 on {os.cpu_count()} cores:"
            " one process per core, as deploy/ runs it)"
        )
        say(f"  raw aiokafka consume                {consume_rate:>10,.0f} records/s")
        say(f"  raw asyncpg COPY                    {copy_rate:>10,.0f} rows/s")
        say(f"  ratio one instance / raw consume    {steady / consume_rate:>10.2f}")
        say(f"  ratio one instance / raw COPY       {steady / copy_rate:>10.2f}")
        say(f"  ratio two instances / one instance  {twin / steady:>10.2f}")
        if base_rate:
            say(f"  per-signal baseline (batch of 1)    {base_rate:>10,.0f} signals/s")
            say(f"  ratio one instance / per-signal     {steady / base_rate:>10.1f}")
        say(
            f"  peak RSS of the service             {rss / 2**20:>10,.0f} MiB (two instances: {twin_rss / 2**20:,.0f} MiB each at most)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--baseline", type=int, default=3_000, help="signals for the batch-of-one run (0: skip)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.signals, args.customers, args.baseline))
