"""Operator commands of `recovery`: look at cases and trends, rebuild the read model from the log, deal
with the outgoing events the relay parked, erase a customer's personal data, and backtest incident rules."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from tqdm import tqdm

from service.adapters.http.models import CaseDetail
from service.adapters.postgres import parking
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.console_sessions import PostgresConsoleSessions
from service.adapters.postgres.erasure import PostgresErasureStore
from service.adapters.postgres.projection_swap import RebuildRunning
from service.adapters.postgres.projections import RebuildReport, rebuild_cases, total_events
from service.app.erasure import NothingHeld, erase_customer
from service.app.reads import CaseFilter
from service.bootstrap import session_timeouts, sla_policy
from service.config import Settings, keyring_of
from service.domain.errors import DomainError
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.domain.workflow import Actor
from service.entrypoints import dead_letters, incidents


def add_commands(commands: Any) -> None:
    cases = commands.add_parser("cases", help="look at cases").add_subparsers(
        dest="cases_command", required=True
    )
    show = cases.add_parser("show", help="one case with its full history, as JSON")
    show.add_argument("case_id")
    listing = cases.add_parser("list", help="cases by resolution deadline, soonest first")
    listing.add_argument("--status", default="open", help="open, resolved or closed (default open)")
    listing.add_argument("--limit", type=int, default=50)
    trends = commands.add_parser("trends", help="resolved cases per root cause, and the trends")
    trends.add_argument(
        "--window-days", type=int, default=None, help="the window to count over (default: the trend window)"
    )
    projections = commands.add_parser("projections", help="the read models")
    rebuild = projections.add_subparsers(dest="projections_command", required=True).add_parser(
        "rebuild", help="replace the case read model with a replay of the event log"
    )
    rebuild.add_argument(
        "--check", action="store_true", help="only compare, taking no lock; exit 1 when anything differs"
    )
    rebuild.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none off a terminal)"
    )
    _add_parked_commands(commands)
    revoke = commands.add_parser("sessions", help="console sessions").add_subparsers(
        dest="sessions_command", required=True
    )
    revoke.add_parser("revoke", help="end every console session of an actor now").add_argument(
        "--actor", required=True, help="the actor, as RECOVERY_API_TOKENS names it"
    )
    customers = commands.add_parser("customers", help="customers' personal data").add_subparsers(
        dest="customers_command", required=True
    )
    erase = customers.add_parser(
        "erase",
        help="erase a customer's personal data (as POST /v1/customers/{id}/erase): a pseudonym for their id,"
        " [erased] for their texts, their key destroyed, recovery.customer.erased published",
    )
    erase.add_argument("customer_id", help="the customer id")
    erase.add_argument("--actor", required=True, help="who erases it, recorded on the cases (an owner)")
    dead_letters.add_commands(commands)
    incidents.add_commands(commands)


def _add_parked_commands(commands: Any) -> None:
    parked = commands.add_parser(
        "parked", help="outgoing events the relay could not publish, and the cases held behind them"
    ).add_subparsers(dest="parked_command", required=True)
    listing = parked.add_parser("list", help="parked events: position, case, type, reason, parked at")
    listing.add_argument("--all", action="store_true", help="also those published or skipped since")
    retry = parked.add_parser(
        "retry", help="let the relay publish a case's parked events again, in order (after a fix)"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", help="the case whose parked events to publish again")
    which.add_argument("--all", action="store_true", help="every case with parked events")
    skip = parked.add_parser(
        "skip", help="give up one parked event (never published); the case's later events then go out"
    )
    skip.add_argument("--position", type=int, required=True, help="the event's position in the log")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "dlq":  # Kafka (and, for a replay, the erased customers in the database)
        return await dead_letters.run(args, settings)
    if args.command == "incidents":  # one connection, after the flags are checked
        return await incidents.run(args, settings)
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        if args.command == "projections":
            return await _rebuild(pool, args.check, args.quiet, settings)
        if args.command == "parked":
            return await _parked(pool, args)
        if args.command == "customers":
            return await _erase(pool, args.customer_id, args.actor, settings)
        if args.command == "sessions":
            revoked = await PostgresConsoleSessions(pool, session_timeouts(settings)).end_all_of(args.actor)
            print(f"ended {revoked} console session(s) of {args.actor}")
            return 0
        reads = PostgresCaseReads(pool, keyring_of(settings))
        if args.command == "trends":
            policy = TrendPolicy(settings.trend_threshold, settings.trend_window)
            for tag, count in await reads.root_causes(args.window_days or policy.window.days):
                print(f"{tag:<24} {count:>6}  {'TREND' if policy.is_trend(count) else ''}")
            return 0
        if args.cases_command == "show":
            return await _show(reads, args.case_id, sla_policy(settings))
        page, _ = await reads.list_cases(CaseFilter(status=args.status), args.limit, None)
        for case in page:
            s = case.state
            print(
                f"{s.resolution_deadline.isoformat():<34} {s.severity.value:<9} {s.status.value:<9} {s.case_id}  {s.customer_id}"
            )
        return 0
    finally:
        await pool.close()


async def _erase(pool: asyncpg.Pool, customer_id: str, actor: str, settings: Settings) -> int:
    try:
        erasure = await erase_customer(
            customer_id, Actor(actor, "owner"), PostgresErasureStore(pool, keyring_of(settings))
        )
    except (NothingHeld, DomainError) as e:
        print(f"recovery: {e}", file=sys.stderr)
        return 1
    done = "was already erased" if erasure.repeated else "erased"
    print(f"{done}: {len(erasure.case_ids)} case(s) now under pseudonym {erasure.pseudonym}")
    for case_id in erasure.case_ids:
        print(f"  {case_id}")
    return 0


async def _show(reads: PostgresCaseReads, case_id: str, sla: SlaPolicy) -> int:
    found = await reads.get_case(case_id)
    if found is None:
        print(f"no case {case_id}", file=sys.stderr)
        return 1
    case, events = found
    detail = CaseDetail.at(case, events, sla, datetime.now(UTC))
    print(json.dumps(detail.model_dump(mode="json"), indent=2))
    return 0


async def _rebuild(pool: asyncpg.Pool, check_only: bool, quiet: bool, settings: Settings) -> int:
    """The replay streams the log with a progress bar (rate, ETA) on stderr; appends wait only for the swap."""
    async with pool.acquire() as conn:
        total = await total_events(conn)
        with tqdm(total=total, unit="event", unit_scale=True, file=sys.stderr, disable=quiet or None) as bar:

            async def advance(events: int) -> None:
                bar.update(events)

            try:
                report = await rebuild_cases(conn, check_only, progress=advance, keyring=keyring_of(settings))
            except RebuildRunning as e:
                print(str(e), file=sys.stderr)
                return 2
    _print_rebuild(report, check_only)
    return 1 if check_only and (report.differing_count or report.unreadable) else 0


def _print_rebuild(report: RebuildReport, check_only: bool) -> None:
    verb = "checked" if check_only else "rebuilt"
    print(
        f"{verb} {report.streams} cases from {report.events} events;"
        f" {report.differing_count} differ from the read model"
    )
    if not check_only:
        print(
            f"  replayed up to log position {report.position}; {report.caught_up} events appended meanwhile"
            f" were caught up, {report.tail} of them with appends blocked ({report.blocked_seconds * 1000:.0f} ms)"
        )
    for case_id in report.differing[:20]:
        print(f"  differs: {case_id}")
    for case_id, reason in sorted(report.unreadable.items())[:20]:
        print(f"  unreadable, kept as stored: {case_id}: {reason}")


async def _parked(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    """The relay publishes what is released, in order per case, on its next turn (it alone publishes)."""
    async with pool.acquire() as conn:
        if args.parked_command == "list":
            rows = await parking.list_parked(conn, parking.RELAY, args.all)
            for r in rows:
                state = "" if r.state == "parked" else f"  [{r.state}]"
                print(
                    f"{r.position:>12}  {r.stream_id}  {r.type}  {r.parked_at.isoformat()}  {r.reason}{state}"
                )
            return 0
        if args.parked_command == "retry":
            released = await parking.release(conn, parking.RELAY, None if args.all else args.case)
            print(f"released {released} parked event(s); the relay publishes them in order on its next turn")
            return 0 if released else 1
        if await parking.skip(conn, parking.RELAY, args.position):
            print(f"skipped the event at position {args.position}; it will never be published")
            return 0
        print(f"no parked event at position {args.position}", file=sys.stderr)
        return 1
