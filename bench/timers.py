"""`make bench`, part two: 100,000 SLA timers falling due within one minute.

Measured on the embedded broker and database, with `recovery serve` as a process:
  - the lag from each resolution deadline to its `recovery.sla.breached` record on Kafka (the record's
    timestamp, set when the relay published it), as p50 / p99 / max;
  - the relay's publish rate (records per second on the outgoing topics while it was busy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.intake import embedded, fresh_database, say, service_env
from bench.signal_mix import MixedSignal, publish_mix
from service.domain.signals import SignalKind
from service.entrypoints.embedded import free_port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def read_topic(bootstrap: str, topic: str, count: int) -> list:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", max_poll_records=5000
    )
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    try:
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    return records


async def main(count: int, spread_seconds: int) -> None:
    with embedded() as (bootstrap, server_dsn):
        await run(bootstrap, server_dsn, count, spread_seconds)


async def run(bootstrap: str, server_dsn: str, count: int, spread_seconds: int) -> None:
    tag = uuid.uuid4().hex[:6]
    topics = {f"timers{tag}.signals.{kind.value}": kind for kind in SignalKind}
    sla_topic, events_topic = f"timers{tag}.sla", f"timers{tag}.case-events"
    dsn = await fresh_database(server_dsn)
    lead = 90  # seconds from now to the first deadline: time to take in every signal first
    start = datetime.now(UTC)
    window = timedelta(hours=1)
    first_deadline = start + timedelta(seconds=lead)
    signals = [
        MixedSignal(
            SignalKind.NPS,
            f"t-{n}",
            f"t-{n}",
            first_deadline - window + timedelta(seconds=spread_seconds * n / count),
            {"score": 2, "channel": "email"},
        )
        for n in range(count)
    ]
    env = {
        **os.environ,
        **service_env(bootstrap, dsn, topics, 2000, f"timers-{tag}", free_port()),
        "RECOVERY_TOPIC_SLA": sla_topic,
        "RECOVERY_TOPIC_CASE_EVENTS": events_topic,
        "RECOVERY_SLA_RESOLUTION": json.dumps(
            {s: "PT1H" for s in ("minor", "moderate", "major", "critical")}
        ),
        "RECOVERY_SLA_FIRST_RESPONSE": json.dumps(
            {c: "PT4H" for c in ("phone", "email", "chat", "social", "web", "in_person")}
        ),
        "RECOVERY_SLA_WARNING_FRACTION": "0.5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service.entrypoints.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    say(f"publishing {count:,} signals whose deadlines fall between +{lead}s and +{lead + spread_seconds}s")
    await publish_mix(producer, topics, signals, structured_every=0)
    await producer.stop()
    conn = await asyncpg.connect(dsn)
    try:
        while (applied := await conn.fetchval("SELECT count(*) FROM signal_log")) < count:
            say(f"  taken in {applied:>7,} / {count:,}")
            await asyncio.sleep(2)
        ready = (datetime.now(UTC) - start).total_seconds()
        say(f"  all taken in after {ready:.0f}s; the first deadline is at +{lead}s")
        if ready > lead:
            say("  WARNING: intake was slower than the lead time; the lag below includes intake")
        while True:
            fired = await conn.fetchval(
                "SELECT count(*) FROM sla_timers WHERE kind = 'breach' AND sla = 'resolution' AND fired_at IS NOT NULL"
            )
            say(f"  breaches fired {fired:>7,} / {count:,}")
            if fired >= count:
                break
            await asyncio.sleep(5)
        head = await conn.fetchval("SELECT max(position) FROM events")
        while await conn.fetchval("SELECT coalesce(max(position), 0) FROM relay_positions") < head:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    breaches = [
        r
        for r in await read_topic(bootstrap, sla_topic, 2 * count)
        if dict(r.headers)["ce_type"] == b"recovery.sla.breached"
    ]
    lags = [
        r.timestamp / 1000 - datetime.fromisoformat(json.loads(r.value)["deadline"]).timestamp()
        for r in breaches
    ]
    events = await read_topic(bootstrap, events_topic, count)
    stamps = sorted(r.timestamp for r in [*events, *breaches])
    process.terminate()
    process.wait(30)
    say("\nresults")
    say(
        f"  breach records on Kafka             {len(breaches):>10,} (distinct ids {len({dict(r.headers)['ce_id'] for r in breaches}):,})"
    )
    say(f"  lag deadline -> Kafka, p50          {percentile(lags, 0.50):>10.3f} s")
    say(f"  lag deadline -> Kafka, p99          {percentile(lags, 0.99):>10.3f} s   (target < 1 s)")
    say(f"  lag deadline -> Kafka, max          {max(lags):>10.3f} s")
    per_second = Counter(stamp // 1000 for stamp in stamps)
    say(f"  relay publish rate, busiest second  {max(per_second.values()):>10,} records/s")
    say(
        f"  relay publish rate, median second   {percentile(list(per_second.values()), 0.5):>10,.0f} records/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--spread", type=int, default=60, help="seconds over which the deadlines fall")
    args = parser.parse_args()
    asyncio.run(main(args.timers, args.spread))
