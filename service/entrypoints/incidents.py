"""`recovery incidents backtest`: what the surge rules would have fired over the stored failures of a span,
so a team calibrates a rule before it turns it on. Writes nothing.

Exit codes: 0 shown (whatever fired); 2 a bad --from, --to or --policy (the message names it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from service.adapters.incident_policy_file import IncidentPolicyFileError, load_incident_policy
from service.adapters.postgres.incident_history import stored_failures
from service.config import Settings
from service.domain.errors import InvalidValue
from service.domain.incident_backtest import MAX_SPAN, Backtest, Backtesting, BacktestSpan, RuleBacktest, why
from service.domain.incidents import IncidentOpened, IncidentPolicy, SurgeRule

BAD_INPUT = 2
FLAGS = {"start": "--from", "end": "--to"}
_ROW = "  {:<22} {:<22} {:>9} {:>9}  {:<8} {}"
_HEADER = _ROW.format("FIRES AT (window end)", "WINDOW FROM", "CUSTOMERS", "BASELINE", "CROSSING", "SCOPE")


def add_commands(commands: Any) -> None:
    incidents = commands.add_parser("incidents", help="incidents: one outage that many customers report")
    about = (
        f"replay the stored failures of a span (at most {MAX_SPAN.days} days) through the surge rules and"
        " print what each rule would have fired; writes nothing"
    )
    backtest = incidents.add_subparsers(dest="incidents_command", required=True).add_parser(
        "backtest", help=about, description=about[0].upper() + about[1:] + "."
    )
    backtest.add_argument(
        "--from",
        dest="start",
        type=rfc3339,
        required=True,
        metavar="TIME",
        help="report what fires from this time on: RFC 3339 with an offset, e.g. 2026-03-01T00:00:00Z (the"
        " failures of a lead-in before it, the longest baseline period and window, only fill windows and"
        " baselines)",
    )
    backtest.add_argument(
        "--to",
        dest="end",
        type=rfc3339,
        required=True,
        metavar="TIME",
        help=f"up to this time (included): RFC 3339, at most {MAX_SPAN.days} days after --from",
    )
    backtest.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="an incident policy file to try (default: RECOVERY_INCIDENT_POLICY_FILE, else the built-in"
        " rule)",
    )
    backtest.add_argument(
        "--json", action="store_true", help="one JSON object per line: each incident, then each rule's count"
    )


def rfc3339(text: str) -> datetime:
    """A time as --from and --to take it (argparse names the flag when this refuses)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 time: {text!r} (e.g. 2026-03-01T00:00:00Z)"
        ) from None


async def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        span = BacktestSpan(args.start, args.end)
    except InvalidValue as e:
        return _refused(FLAGS[e.field or "end"], e.detail)
    try:
        policy = load_incident_policy(args.policy or settings.incident_policy_file)
    except IncidentPolicyFileError as e:
        return _refused("--policy" if args.policy else "RECOVERY_INCIDENT_POLICY_FILE", str(e))
    backtest = Backtesting(policy, span)
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        async for page in stored_failures(conn, span.reads_after(policy), span.end):
            backtest.feed(page)
    finally:
        await conn.close()
    result = backtest.result()
    for line in json_lines(result) if args.json else table(result, policy):
        print(line)
    return 0


def _refused(flag: str, reason: str) -> int:
    print(f"recovery incidents backtest: {flag}: {reason}", file=sys.stderr)
    return BAD_INPUT


def table(result: Backtest, policy: IncidentPolicy) -> Iterator[str]:
    """The backtest as an operator reads it: per rule, each incident it would have fired, then its count."""
    span = result.span
    yield (
        f"incident policy {policy.version or '(built in)'}, from {_time(span.start)} to {_time(span.end)}:"
        f" {result.failures} failures replayed, from {_time(span.reads_after(policy))} on"
    )
    for outcome in result.rules:
        yield ""
        yield f"rule {outcome.rule.name}: {describe(outcome.rule)}"
        if outcome.fired:
            yield _HEADER
        for event in outcome.fired:
            d = why(event)
            times = _time(d.window_end), _time(d.window_start)
            yield _ROW.format(*times, d.customers, _baseline(d.baseline), _crossing(event), _scope(event))
        yield summary(outcome)


def summary(outcome: RuleBacktest) -> str:
    n, crossing = len(outcome.fired), outcome.rule.on_crossing
    verb = "declared" if crossing == "declare" else "proposed"
    return f"{outcome.rule.name}: {n} incident{'' if n == 1 else 's'} would have been {verb}"


def describe(rule: SurgeRule) -> str:
    """The rule in a line: its scope, its floor within its window, its multiple of the baseline."""
    keys = " and ".join(k.value for k in rule.group_by)
    floor = f"{rule.min_customers} customers within {_duration(rule.window)} per {keys}"
    if rule.baseline_multiple == 0:
        return f"{floor} (the floor alone); {rule.on_crossing}s"
    baseline = (
        f"{rule.baseline_multiple:g} times the baseline of the {_duration(rule.baseline_period)} before"
    )
    return f"{floor}, and {baseline}; {rule.on_crossing}s"


def json_lines(result: Backtest) -> Iterator[str]:
    """One object per incident (type "incident"), then one per rule (type "rule") with its count."""
    for outcome in result.rules:
        for event in outcome.fired:
            d = why(event)
            yield json.dumps(
                {
                    "type": "incident",
                    "rule": d.rule,
                    "incident_id": event.incident_id,
                    "at": d.window_end.isoformat(),
                    "scope": event.scope,
                    "customers": d.customers,
                    "baseline": d.baseline,
                    "window_start": d.window_start.isoformat(),
                    "crossing": _crossing(event),
                }
            )
    for outcome in result.rules:
        fired = len(outcome.fired)
        yield json.dumps(
            {
                "type": "rule",
                "rule": outcome.rule.name,
                "incidents": fired,
                "crossing": outcome.rule.on_crossing,
            }
        )


def _crossing(event: IncidentOpened) -> str:
    return "propose" if event.type == "incident.proposed" else "declare"


def _scope(event: IncidentOpened) -> str:
    return " ".join(f"{key}={value}" for key, value in event.scope.items())


def _baseline(baseline: float | None) -> str:
    return "none" if baseline is None else f"{baseline:.2f}"


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(span: timedelta) -> str:
    """15m, 7d, 1h30m: the largest units, none left out that count."""
    seconds, parts = int(span.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
