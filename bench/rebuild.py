"""`recovery projections rebuild` and `--check` on a log of N events: events per second and peak RSS, for two
sizes side by side, so that flat memory shows as a ratio of peaks near 1 while the log grows tenfold.

The log is synthetic and loaded by COPY: cases of ten events each (opened, six signals attached, assigned, a
step added and recorded), made from one template case whose ids are swapped per case, with the read model
the live service would have written beside it. Each command runs in a child process of its own (the CLI's
code, timed around the call), so its peak RSS is its own and not the loader's. Optionally the old rebuild
(all events in memory, `git show <rev>:service/adapters/postgres/projections.py`) is measured the same way.

    .venv/bin/python -m bench.rebuild                      # N = 100,000 and 1,000,000
    .venv/bin/python -m bench.rebuild --sizes 20000 --old HEAD~1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bench.intake import embedded, fresh_database, say
from service.adapters.postgres.case_writes import CASE_COLUMNS, case_rows, event_id
from service.domain.case import CaseState, evolve
from service.domain.events import (
    CASE_EVENT,
    CaseAssigned,
    CaseEvent,
    CaseOpened,
    SignalAttached,
    SignalRef,
    StepAdded,
    StepKind,
    StepOutcome,
    StepRecorded,
)
from service.domain.severity import Severity
from service.domain.signals import Channel, Money, SignalKind, Tier

CASE, CUSTOMER = "CASE-PLACEHOLDER", "CUSTOMER-PLACEHOLDER"
EVENTS_PER_CASE = 10
COPY_BATCH = 50_000


def template() -> list[CaseEvent]:
    t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def ref(n: int) -> SignalRef:
        at = t0 + timedelta(minutes=n)
        return SignalRef(
            source="bench",
            id=f"{CUSTOMER}-{n}",
            type=SignalKind.COMPLAINT,
            severity=Severity.MAJOR,
            reasons=("complaint:keywords", "history:repeat"),
            category="delivery",
            occurred_at=at,
            received_at=at,
            amount_at_stake=Money(amount=Decimal("40.00"), currency="EUR"),
        )

    opened = CaseOpened(
        case_id=CASE,
        at=t0,
        customer_id=CUSTOMER,
        ordinal=1,
        customer_tier=Tier.GOLD,
        channel=Channel.EMAIL,
        severity=Severity.MAJOR,
        signal=ref(0),
        opened_at=t0,
        first_response_deadline=t0 + timedelta(hours=4),
        resolution_deadline=t0 + timedelta(hours=48),
    )
    later = t0 + timedelta(hours=1)
    return [
        opened,
        *(SignalAttached(case_id=CASE, at=t0 + timedelta(minutes=n), signal=ref(n)) for n in range(1, 7)),
        CaseAssigned(case_id=CASE, at=later, actor="mia", owner="ana"),
        StepAdded(case_id=CASE, at=later, actor="ana", step_id="step-1", kind=StepKind.CALL_CUSTOMER),
        StepRecorded(
            case_id=CASE,
            at=later,
            actor="ana",
            step_id="step-1",
            outcome=StepOutcome.COMPLETED,
            notes="called back",
        ),
    ]


def case_rows_template() -> tuple[list[tuple[str, str]], tuple[Any, ...]]:
    events = template()
    assert len(events) == EVENTS_PER_CASE
    state: CaseState | None = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    [row] = case_rows([state])
    return [(e.type, CASE_EVENT.dump_json(e).decode()) for e in events], row


async def load(dsn: str, events: int) -> None:
    """N events in N/10 cases, and the read model that matches them, by COPY."""
    event_template, row_template = case_rows_template()
    state_at = CASE_COLUMNS.index("state")
    conn = await asyncpg.connect(dsn)
    try:
        cases = events // EVENTS_PER_CASE
        for start in range(0, cases, COPY_BATCH // EVENTS_PER_CASE):
            ids = range(start, min(cases, start + COPY_BATCH // EVENTS_PER_CASE))
            log, model = [], []
            for n in ids:
                case, customer = f"case-{n:09d}", f"cust-{n:09d}"
                for version, (kind, data) in enumerate(event_template, start=1):
                    body = data.replace(CASE, case).replace(CUSTOMER, customer)
                    log.append((case, version, event_id(case, version), kind, body))
                row = list(row_template)
                row[0], row[1] = case, customer
                row[state_at] = str(row[state_at]).replace(CASE, case).replace(CUSTOMER, customer)
                model.append(tuple(row))
            await conn.copy_records_to_table(
                "events", records=log, columns=["stream_id", "version", "event_id", "type", "data"]
            )
            await conn.copy_records_to_table("cases", records=model, columns=CASE_COLUMNS)
        await conn.execute("VACUUM ANALYZE events")
        await conn.execute("VACUUM ANALYZE cases")
    finally:
        await conn.close()


def run_child(dsn: str, mode: str, old_source: Path | None = None) -> dict[str, Any]:
    """One command in a process of its own; its figures come back as JSON on stdout."""
    command = [sys.executable, "-m", "bench.rebuild", "--child", mode, "--dsn", dsn]
    if old_source is not None:
        command += ["--old-source", str(old_source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def child(dsn: str, mode: str, old_source: str | None) -> None:
    """Time one rebuild or check as the CLI runs it; report its events/s, peak RSS, and RSS before it ran."""
    from service.adapters.postgres import projections

    module: Any = projections
    if old_source:
        import importlib.util

        spec = importlib.util.spec_from_file_location("old_projections", old_source)
        assert spec is not None and spec.loader is not None
        module = sys.modules["old_projections"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    conn = await asyncpg.connect(dsn)
    baseline = _high_water_kb()
    started = time.perf_counter()
    report = await module.rebuild_cases(conn, check_only=mode == "check")
    seconds = time.perf_counter() - started
    await conn.close()
    differing = getattr(report, "differing_count", len(report.differing))
    peak = _high_water_kb()
    figures = {"events": report.events, "seconds": seconds, "peak_kb": peak, "baseline_kb": baseline}
    blocked_ms = getattr(report, "blocked_seconds", 0.0) * 1000
    print(json.dumps({**figures, "differing": differing, "blocked_ms": blocked_ms}))


def old_projections(revision: str) -> Path:
    """The projections module of another revision, as a file the child process can import."""
    source = subprocess.run(
        ["git", "show", f"{revision}:service/adapters/postgres/projections.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_projections.py"
    path.write_text(source)
    return path


async def measure(sizes: list[int], old_source: Path | None) -> None:
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with embedded(with_broker=False) as (_, server_dsn):
        for size in sizes:
            dsn = await fresh_database(server_dsn)
            say(f"loading {size:,} events ({size // EVENTS_PER_CASE:,} cases)")
            started = time.perf_counter()
            await load(dsn, size)
            say(f"  loaded in {time.perf_counter() - started:.1f} s")
            modes = ["check", "rebuild", "check"] + (["old check"] if old_source else [])
            for label, mode in zip(["check", "rebuild", "check after", "old check"], modes, strict=False):
                source = old_source if mode.startswith("old") else None
                got = await asyncio.to_thread(run_child, dsn, mode.split()[-1], source)
                assert got["events"] == size and got["differing"] == 0, got
                results[(label, size)] = got
                say(f"  {label:<12} {_line(got)}")
    _table(results, sizes)


def _high_water_kb() -> int:
    """This process's peak RSS (VmHWM): unlike getrusage's ru_maxrss, not inherited from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _line(got: dict[str, Any]) -> str:
    rate = got["events"] / got["seconds"]
    return (
        f"{got['seconds']:7.1f} s  {rate:9,.0f} events/s  peak RSS {got['peak_kb'] / 1024:7.1f} MB"
        f" (at start {got['baseline_kb'] / 1024:.1f} MB)"
        + (f"  appends blocked {got['blocked_ms']:.0f} ms" if got["blocked_ms"] else "")
    )


def _table(results: dict[tuple[str, int], dict[str, Any]], sizes: list[int]) -> None:
    labels = sorted(
        {label for label, _ in results}, key=["check", "rebuild", "check after", "old check"].index
    )
    say("")
    say(f"{'':<12}" + "".join(f"{f'N = {s:,}':>36}" for s in sizes) + f"{'peak ratio':>12}")
    for label in labels:
        cells = [results[(label, s)] for s in sizes]
        line = "".join(
            f"{c['events'] / c['seconds']:>14,.0f} ev/s {c['peak_kb'] / 1024:>9.1f} MB peak" for c in cells
        )
        ratio = cells[-1]["peak_kb"] / cells[0]["peak_kb"]
        say(f"{label:<12}{line}{ratio:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--old", help="also measure the rebuild of this git revision (all in memory)")
    parser.add_argument("--child", choices=["rebuild", "check"], help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--old-source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.dsn, args.child, args.old_source))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        asyncio.run(measure(args.sizes, old_projections(args.old) if args.old else None))


if __name__ == "__main__":
    main()
