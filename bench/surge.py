"""An outage on top of the usual traffic: the usual mix, and the same mix with a surge of customers of one
service and region within five minutes, each drained by one `recovery serve`, side by side in one run.

    python -m bench.surge [--signals 30000] [--customers 3000] [--surge 50000]

It reports the intake rate of the runs (the surge drained twice: with incident detection off, a floor no
scope reaches, and on, the default rule), how long after the crossing signal was consumed the incident was
declared, how many cases joined it (each exactly once), and the peak RSS of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.intake import embedded, end_to_end, fresh_database, say, topics_for
from bench.signal_mix import MixedSignal, publish_mix, signal_mix
from service.domain.incidents import DEFAULT_SURGE
from service.domain.signals import SignalKind

WHERE = {"service": "broadband", "region": "surge-north"}


def backlog(count: int, customers: int, surge: int) -> list[MixedSignal]:
    """The usual mix over the last five minutes, and `surge` complaints of distinct customers of one scope
    spread over the same minutes, in time order."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    usual = list(signal_mix(count, customers, seed=42, start=start))
    rng = random.Random(9)
    outage = [
        MixedSignal(
            SignalKind.COMPLAINT,
            f"surge-{n:06d}",
            f"surge-{n}",
            start + timedelta(milliseconds=rng.randrange(5 * 60 * 1000)),
            {"text": "No internet since this morning.", "channel": "web", **WHERE},
        )
        for n in range(surge)
    ]
    return sorted([*usual, *outage], key=lambda s: s.at)


async def published(bootstrap: str, signals: list[MixedSignal]) -> dict[str, SignalKind]:
    topics = topics_for(uuid.uuid4().hex[:6])
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        await publish_mix(producer, topics, signals)
    finally:
        await producer.stop()
    return topics


async def incident_figures(dsn: str) -> tuple[int, float | None, int, int]:
    """(incidents, seconds from the crossing signal's consumption to the declaration, cases linked, links)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT incident_id, opened_at FROM incidents")
        if not rows:
            return 0, None, 0, 0
        incident = min(rows, key=lambda r: r["opened_at"])
        crossing = await conn.fetchval(
            "SELECT received_at FROM (SELECT received_at, row_number() OVER (ORDER BY received_at) AS n"
            " FROM signal_log WHERE service = $1 AND region = $2) s WHERE n = $3",
            WHERE["service"],
            WHERE["region"],
            DEFAULT_SURGE.min_customers,
        )
        linked = await conn.fetchval("SELECT count(*) FROM cases WHERE incident_id = $1", incident["incident_id"])
        links = await conn.fetchval("SELECT count(*) FROM events WHERE type = 'case.incident_linked'")
        delay = None if crossing is None else (incident["opened_at"] - crossing).total_seconds()
        return len(rows), delay, linked, links
    finally:
        await conn.close()


async def main(count: int, customers: int, surge: int) -> None:
    with embedded() as (bootstrap, server_dsn):
        say(f"the usual mix: {count:,} signals for {customers:,} customers; the surge: {surge:,} more customers")
        usual_topics = await published(bootstrap, backlog(count, customers, 0))
        surge_signals = backlog(count, customers, surge)
        off_topics = await published(bootstrap, surge_signals)
        surge_topics = await published(bootstrap, surge_signals)
        say("(1) the usual mix")
        usual, _, usual_rss = await end_to_end(bootstrap, await fresh_database(server_dsn), usual_topics, count, 2000)
        say("(2) the usual mix with the surge, incidents off (no scope reaches the floor)")
        with tempfile.NamedTemporaryFile("w", suffix=".json") as never:
            rule = {**DEFAULT_SURGE.model_dump(mode="json"), "min_customers": 1_000_000}
            json.dump({"surges": [rule]}, never)
            never.flush()
            off, _, off_rss = await end_to_end(
                bootstrap,
                await fresh_database(server_dsn),
                off_topics,
                len(surge_signals),
                2000,
                [{"RECOVERY_INCIDENT_POLICY_FILE": never.name}],
            )
        say("(3) the usual mix with the surge, incidents on (the default rule)")
        dsn = await fresh_database(server_dsn)
        with_surge, _, surge_rss = await end_to_end(bootstrap, dsn, surge_topics, len(surge_signals), 2000)
        incidents, delay, linked, links = await incident_figures(dsn)
        say("\nresults")
        say(f"  intake, usual mix                 {usual:>10,.0f} signals/s")
        say(f"  intake, with the surge, off       {off:>10,.0f} signals/s")
        say(f"  intake, with the surge, on        {with_surge:>10,.0f} signals/s   (ratio on / off {with_surge / off:.2f})")
        say(f"  incidents declared                {incidents:>10}")
        say(
            "  declared after the crossing       "
            + ("         -" if delay is None else f"{delay:>10.3f} s")
            + "   (from the consumption of the 20th customer's signal)"
        )
        say(f"  cases linked to it                {linked:>10,} of {surge:,} surge customers ({links:,} link events)")
        say(
            f"  peak RSS                          {usual_rss / 2**20:>10,.0f} MiB usual,"
            f" {off_rss / 2**20:,.0f} / {surge_rss / 2**20:,.0f} MiB with the surge, off / on"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--surge", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(main(args.signals, args.customers, args.surge))
