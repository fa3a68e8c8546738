"""`recovery incidents backtest` over signals the intake applied one batch at a time, as the consumer does:
under the live policy it reports exactly the incidents live detection opened (the incidents table), and a
stricter policy given with --policy shows what it would have fired, earlier and in more scopes; the lead-in
before --from and the failures after --to fire nothing, and signals that are no failure are never counted."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from service.adapters.postgres.incident_history import stored_failures
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.sentiment import VaderSentiment
from service.app.intake import apply_signals
from service.bootstrap import SystemClock, intake_rules
from service.config import Settings
from service.domain.incidents import INCIDENT_STATE
from service.domain.signals import Channel, Signal, SignalKind
from service.entrypoints import incidents, ops
from tests.support import suite_keyring

T0 = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
FROM, TO = T0 + timedelta(minutes=60), T0 + timedelta(minutes=120)
LIVE = {  # six customers of a service and region within 10 minutes, and three times the hour's baseline
    "version": "live-1",
    "surges": [
        {
            "name": "service-region",
            "group_by": ["service", "region"],
            "window": "PT10M",
            "min_customers": 5,
            "baseline_multiple": 3,
            "baseline_period": "PT1H",
        }
    ],
}
STRICTER = {  # three customers of a service and region, or six of a region, whatever the baseline: proposed
    "version": "try-2",
    "surges": [
        {**LIVE["surges"][0], "min_customers": 3, "baseline_multiple": 0, "on_crossing": "propose"},
        {
            "name": "region-wide",
            "group_by": ["region"],
            "window": "PT10M",
            "min_customers": 6,
            "baseline_multiple": 0,
            "baseline_period": "PT1H",
            "on_crossing": "propose",
        },
    ],
}


def failure(minute: float, customer: str, service: str | None, region: str) -> Signal:
    at = T0 + timedelta(minutes=minute)
    return Signal(
        source="backtest",
        id=f"{customer}-{minute}",
        kind=SignalKind.COMPLAINT,
        occurred_at=at,
        received_at=at + timedelta(seconds=2),
        customer_id=customer,
        channel=Channel.EMAIL,
        text="No internet since this morning.",
        service=service,
        region=region,
    )


def promoter(minute: float, customer: str, service: str, region: str) -> Signal:
    at = T0 + timedelta(minutes=minute)
    return Signal(
        source="backtest",
        id=f"{customer}-{minute}",
        kind=SignalKind.NPS,
        occurred_at=at,
        received_at=at,
        customer_id=customer,
        channel=Channel.EMAIL,
        score=10,
        service=service,
        region=region,
    )


def history() -> list[Signal]:
    usual = [failure(5 * k, f"usual-{k}", "broadband", "north") for k in range(1, 12)]  # two per 10 minutes
    before_span = [failure(30 + k / 2, f"early-{k}", "mobile", "west") for k in range(3)]  # in the lead-in
    surge = [failure(70 + k / 2, f"surge-{k}", "broadband", "north") for k in range(8)]
    no_service = [failure(70.2, "walk-in-1", None, "north"), failure(70.7, "walk-in-2", None, "north")]
    fine = [promoter(79 + k / 5, f"fan-{k}", "broadband", "south") for k in range(3)]  # no failures
    south = [failure(80 + k / 2, f"south-{k}", "broadband", "south") for k in range(4)]
    after_span = [failure(130 + k / 2, f"late-{k}", "mobile", "east") for k in range(3)]
    return sorted(
        [*usual, *before_span, *surge, *no_service, *fine, *south, *after_span], key=lambda s: s.occurred_at
    )


def policy_file(tmp_path: Path, name: str, document: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def backtest_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recovery")
    incidents.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(
        ["incidents", "backtest", "--from", FROM.isoformat(), "--to", TO.isoformat(), *argv]
    )


async def backtest(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    capsys.readouterr()
    assert await ops.run(backtest_args(*argv), settings) == 0
    return capsys.readouterr().out.splitlines()


async def live_incidents(pool: asyncpg.Pool) -> set[tuple[Any, ...]]:
    """What live detection opened: each incident's rule, scope, id, window end, count and baseline."""
    found = set()
    for row in await pool.fetch("SELECT state FROM incidents"):
        state = INCIDENT_STATE.validate_json(row["state"])
        d = state.detection
        assert d is not None
        found.add(
            (
                d.rule,
                json.dumps(state.scope, sort_keys=True),
                state.incident_id,
                d.window_end,
                d.customers,
                d.baseline,
            )
        )
    return found


def reported(lines: list[str]) -> set[tuple[Any, ...]]:
    objects = [json.loads(line) for line in lines]
    return {
        (
            o["rule"],
            json.dumps(o["scope"], sort_keys=True),
            o["incident_id"],
            datetime.fromisoformat(o["at"]),
            o["customers"],
            o["baseline"],
        )
        for o in objects
        if o["type"] == "incident"
    }


async def test_the_backtest_reports_what_live_detection_opened_and_a_stricter_policy_what_it_would_have(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        database_url=database_url, incident_policy_file=policy_file(tmp_path, "live.json", LIVE)
    )
    store, rules = PostgresIntakeStore(pool, suite_keyring()), intake_rules(settings)
    for signal in history():  # one batch a signal: live detection counts at every one, as the replay does
        await apply_signals([signal], {}, "g", store, rules, VaderSentiment(), SystemClock())

    live = await live_incidents(pool)
    [(rule, scope, _, at, customers, baseline)] = live
    assert (rule, json.loads(scope)) == ("service-region", {"service": "broadband", "region": "north"})
    assert (
        customers == 6 and baseline is not None and 5 < 3 * baseline <= 6
    )  # the baseline, not the floor, decided
    assert at == T0 + timedelta(minutes=72.5)

    as_configured = await backtest(settings, capsys, "--json")
    assert reported(as_configured) == live
    assert json.loads(as_configured[-1]) == {
        "type": "rule",
        "rule": "service-region",
        "incidents": 1,
        "crossing": "declare",
    }

    table = await backtest(settings, capsys)
    assert table[0].startswith("incident policy live-1, from ") and " 28 failures replayed" in table[0]
    [row] = [line for line in table if "service=broadband region=north" in line]
    assert row.split()[:4] == [_time(at), _time(at - timedelta(minutes=10)), "6", f"{baseline:.2f}"]
    assert row.split()[4] == "declare" and table[-1] == "service-region: 1 incident would have been declared"

    stricter = policy_file(tmp_path, "stricter.json", STRICTER)
    tried = await backtest(settings, capsys, "--json", "--policy", str(stricter))
    fired = {
        (o["rule"], json.dumps(o["scope"])): o for o in map(json.loads, tried) if o["type"] == "incident"
    }
    assert set(fired) == {
        ("service-region", json.dumps({"service": "broadband", "region": "north"})),
        ("service-region", json.dumps({"service": "broadband", "region": "south"})),
        ("region-wide", json.dumps({"region": "north"})),
    }  # not mobile/west (before --from), nor mobile/east (after --to), nor the south by its promoters
    north = fired[("service-region", json.dumps({"service": "broadband", "region": "north"}))]
    assert datetime.fromisoformat(north["at"]) == T0 + timedelta(minutes=71) < at  # the third surge customer
    south = fired[("service-region", json.dumps({"service": "broadband", "region": "south"}))]
    assert datetime.fromisoformat(south["at"]) == T0 + timedelta(minutes=81) and south["customers"] == 3
    region = fired[("region-wide", json.dumps({"region": "north"}))]
    assert datetime.fromisoformat(region["at"]) == T0 + timedelta(minutes=71.5)  # walk-ins count, no service
    assert all(o["crossing"] == "propose" for o in fired.values())
    assert north["baseline"] is not None and south["baseline"] is None  # its promoters made it no baseline
    assert [json.loads(line)["incidents"] for line in tried[-2:]] == [2, 1]
    assert await live_incidents(pool) == live  # a backtest writes nothing


async def test_the_failures_are_read_in_time_order_a_page_at_a_time_and_only_those_in_the_interval(
    pool: asyncpg.Pool,
) -> None:
    store, rules = PostgresIntakeStore(pool, suite_keyring()), intake_rules(Settings())
    await apply_signals(history(), {}, "g", store, rules, VaderSentiment(), SystemClock())
    async with pool.acquire() as conn:
        pages = [page async for page in stored_failures(conn, T0 + timedelta(minutes=30), TO, page=4)]
    read = [s for page in pages for s in page]
    assert [len(p) for p in pages] == [4] * (len(read) // 4) + ([len(read) % 4] if len(read) % 4 else [])
    assert [s.at for s in read] == sorted(s.at for s in read)
    assert {s.customer_id for s in read} == (
        {f"early-{k}" for k in (1, 2)}
        | {f"usual-{k}" for k in range(7, 12)}
        | {f"surge-{k}" for k in range(8)}
        | {"walk-in-1", "walk-in-2"}
        | {f"south-{k}" for k in range(4)}
    )  # after minute 30, up to --to; no promoter; none from after --to
    walk_in = next(s for s in read if s.customer_id == "walk-in-1")
    assert (walk_in.kind, walk_in.service, walk_in.region) == ("complaint", None, "north")


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
