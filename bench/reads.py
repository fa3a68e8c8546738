"""`make bench`, part three: GET /v1/cases?status=open with 1,000,000 cases in the store.

The read model is filled with COPY (1,000,000 cases, a third of them open, and a signal each), then the
API (the FastAPI app over asyncpg, in process, so the figure is the API's and not a client's) answers
the list query: first pages, deep pages by cursor, and filtered by severity and owner; then managers'
approvals list (one case in 200 waits for an approval) through its index, beside the scan it replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from bench.intake import embedded, fresh_database, say
from bench.timers import percentile
from service.adapters.http.api import create_app
from service.adapters.http.token_gate import FailureThrottle, TokenGate
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.case_writes import CASE_COLUMNS
from service.adapters.postgres.intake_store import SIGNAL_LOG_COLUMNS
from service.api_tokens import ApiToken, ApiTokens
from service.domain.case import (
    CASE_STATE,
    CaseState,
    CaseStatus,
    Compensation,
    CompensationStatus,
    awaiting_approval,
    next_deadline,
)
from service.domain.events import CompensationKind
from service.domain.registry import SNAPSHOT
from service.domain.severity import Severity
from service.domain.signals import Channel, Tier
from tests.support import suite_keyring

TOKEN = "bench-token-for-the-read-benchmark-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STATUSES = [CaseStatus.OPEN, CaseStatus.RESOLVED, CaseStatus.CLOSED]
APPROVAL_EVERY = 200  # one case in 200 has a compensation awaiting a manager's approval
SCAN = (  # the approvals list before migration 015: every case's JSON, not closed, searched
    "SELECT state, state_version FROM cases WHERE status <> 'closed'"
    " AND state::jsonb -> 'compensations' @> '[{\"status\": \"awaiting_approval\"}]'::jsonb"
    " ORDER BY resolution_deadline, case_id LIMIT $1"
)


def _waiting(at: datetime) -> Compensation:
    return Compensation(
        request_id=str(uuid.uuid4()),
        kind=CompensationKind.CREDIT,
        amount=Decimal("250.00"),
        currency="EUR",
        reason="bench",
        requested_by="ana",
        requested_at=at,
        status=CompensationStatus.AWAITING_APPROVAL,
        needs_approval=("over_agent_limit",),
    )


def rows(count: int, start: datetime) -> list[tuple[object, ...]]:
    rng = random.Random(1)
    out = []
    for n in range(count):
        status = STATUSES[n % 3]
        severity = rng.choice(list(Severity))
        opened = start - timedelta(minutes=rng.randrange(60 * 24 * 90))
        deadline = opened + timedelta(hours=rng.choice([4, 24, 48, 72]))
        state = CaseState(
            case_id=str(uuid.UUID(int=n)),
            customer_id=f"cust-{n}",
            ordinal=1,
            status=status,
            severity=severity,
            customer_tier=Tier.STANDARD,
            channel=Channel.EMAIL,
            opened_at=opened,
            received_at=opened,
            first_response_deadline=opened + timedelta(hours=4),
            resolution_deadline=deadline,
            resolution_clock_started_at=opened,
            owner=rng.choice(["ana", "ben", "cho", None]),
            signal_count=1,
            version=1,
            compensations=(_waiting(opened),) if n % APPROVAL_EVERY == 1 else (),
        )
        out.append(
            (
                state.case_id,
                state.customer_id,
                1,
                status.value,
                severity.value,
                state.owner,
                opened,
                state.first_response_deadline,
                deadline,
                1,
                CASE_STATE.dump_json(state).decode(),
                None,
                None,
                SNAPSHOT.version,
                next_deadline(state),
                awaiting_approval(state),
                None,
            )
        )
    return out


async def fill(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        step = 100_000
        for at in range(0, count, step):
            batch = rows(min(step, count - at), now)
            batch = [(str(uuid.UUID(int=at + i)), f"cust-{at + i}", *r[2:]) for i, r in enumerate(batch)]
            await conn.copy_records_to_table("cases", records=batch, columns=CASE_COLUMNS)
            await conn.copy_records_to_table(
                "signal_log",
                records=[
                    (
                        "bench",
                        f"s-{r[0]}",
                        r[1],
                        "nps",
                        r[6],
                        r[6],
                        r[4],
                        ["nps:0-3"],
                        "other",
                        "opened",
                        r[0],
                        "bench",
                    )
                    for r in batch
                ],
                columns=SIGNAL_LOG_COLUMNS[: SIGNAL_LOG_COLUMNS.index("text")],
            )
            say(f"  filled {at + len(batch):>9,} / {count:,}")
        await conn.execute("ANALYZE cases; ANALYZE signal_log")
    finally:
        await conn.close()


async def measure(client: httpx.AsyncClient, label: str, requests: list[dict[str, str]]) -> None:
    """GET /v1/cases with each of the parameters in turn."""
    queue = iter(requests)

    async def one() -> None:
        answer = await client.get("/v1/cases", params=next(queue), headers=AUTH)
        assert answer.status_code == 200, answer.text

    await timed(label, one, len(requests))


async def main(count: int, samples: int) -> None:
    with embedded(with_broker=False) as (_, server_dsn):
        dsn = await fresh_database(server_dsn)
        say(f"filling the read model with {count:,} cases")
        await fill(dsn, count)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        reads = PostgresCaseReads(pool, suite_keyring())
        tokens = ApiTokens({TOKEN: ApiToken(actor="bench", role="agent")})
        app = create_app(lambda: reads, TokenGate(tokens, FailureThrottle(10)), _ready)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            say("GET /v1/cases (limit 50)")
            await measure(client, "status=open, first page", [{"status": "open"}] * samples)
            cursors = []
            page = (
                await client.get(
                    "/v1/cases",
                    params={"status": "open", "limit": "500"},
                    headers=AUTH,
                )
            ).json()
            for _ in range(20):
                cursors.append(page["next_cursor"])
                page = (
                    await client.get(
                        "/v1/cases",
                        params={"status": "open", "limit": "500", "cursor": page["next_cursor"]},
                        headers=AUTH,
                    )
                ).json()
            await measure(
                client,
                "status=open, deep pages by cursor",
                [{"status": "open", "cursor": c} for c in cursors] * (samples // 20),
            )
            await measure(
                client,
                "status=open&severity=critical",
                [{"status": "open", "severity": "critical"}] * samples,
            )
            await measure(client, "status=open&owner=ana", [{"status": "open", "owner": "ana"}] * samples)
        say(f"the approvals list, first page of 50 (1 case in {APPROVAL_EVERY} waits for an approval)")
        await timed("through the index cases_approvals", lambda: reads.awaiting_approval(50, None), samples)
        await timed("a scan of every case's JSON (before 015)", lambda: pool.fetch(SCAN, 51), samples // 25)
        await pool.close()


async def timed(label: str, query: Callable[[], Awaitable[object]], samples: int) -> None:
    timings = []
    for _ in range(max(samples, 1)):
        started = time.perf_counter()
        await query()
        timings.append((time.perf_counter() - started) * 1000)
    say(
        f"  {label:<44} p50 {percentile(timings, 0.5):6.1f} ms   p99 {percentile(timings, 0.99):6.1f} ms   (n={len(timings)})"
    )


async def _ready() -> dict[str, bool]:
    return {"database": True, "kafka": True}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.samples))
