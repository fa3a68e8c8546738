"""`recovery policy diff|apply`: preview what a new SLA policy version does to the open cases, or apply it.

Exit codes: 0 shown, applied, or nothing to apply; 1 no policy file, or one that is not valid; 2 another apply is
running; 3 applied, but some cases could not be corrected (listed and logged by id: run `apply` again).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from service.adapters.postgres.policy_versions import PolicyApplyRunning, apply_new_policy, diff_policy
from service.adapters.sla_policy_file import SlaPolicyFileError, load_sla_policy
from service.config import Settings, keyring_of
from service.domain.events import DeadlinesCorrected
from service.domain.policy_change import PolicyChange
from service.domain.sla import SlaPolicy

INVALID_FILE, APPLY_RUNNING, CASES_FAILED = 1, 2, 3


def add_commands(commands: Any) -> None:
    policy = commands.add_parser("policy", help="SLA policy versions: preview or apply one to the open cases")
    which = policy.add_subparsers(dest="policy_command", required=True)
    diff = which.add_parser("diff", help="what the policy would change on the open cases; writes nothing")
    diff.add_argument("--file", type=Path, required=True, help="the new SLA policy file")
    apply = which.add_parser(
        "apply", help="correct the open cases to the policy (as start-up does when its version is new)"
    )
    apply.add_argument("--file", type=Path, help="default: RECOVERY_SLA_POLICY_FILE")
    apply.add_argument(
        "--again",
        action="store_true",
        help="look at every open case even when this version was applied in full (after a rolling deploy)",
    )
    for command in (diff, apply):
        command.add_argument("--examples", type=int, default=10, help="how many changed cases to show")
        command.add_argument("--json", action="store_true", help="the summary as one JSON document")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    policy = _policy(settings, args.file or settings.sla_policy_file)
    if policy is None:
        return INVALID_FILE
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        if args.policy_command == "diff":
            _print(await diff_policy(pool, policy, args.examples), args.json, "would change")
            return 0
        try:
            change = await apply_new_policy(
                pool, keyring_of(settings), policy, examples=args.examples, again=args.again, failed=_listed
            )
        except PolicyApplyRunning as e:
            print(str(e), file=sys.stderr)
            return APPLY_RUNNING
    finally:
        await pool.close()
    if change is None:
        print(f"SLA policy {policy.version} is applied already: nothing to change (--again looks anyway)")
        return 0
    _print(change, args.json, "changed")
    return CASES_FAILED if change.failed else 0


def _listed(case_id: str, error: Exception) -> None:
    """The summary names each case that failed (on stdout, as one --json document): no log line besides."""


def _policy(settings: Settings, path: Path | None) -> SlaPolicy | None:
    """The service's SLA policy with the file's calendars and clocks, or None (said why on stderr)."""
    from service.bootstrap import sla_policy

    if path is None:
        print("no SLA policy file: give --file or set RECOVERY_SLA_POLICY_FILE", file=sys.stderr)
        return None
    try:
        calendars = load_sla_policy(path)
    except SlaPolicyFileError as e:
        print(f"invalid SLA policy file: {e}", file=sys.stderr)
        return None
    return sla_policy(settings).model_copy(update={"calendars": calendars})


def summary(change: PolicyChange) -> dict[str, Any]:
    """The change as JSON: counts per clock, and each example clock's old and new deadline."""
    return {
        "from_version": change.from_version,
        "to_version": change.to_version,
        "open_cases": change.looked_at,
        "changed_cases": change.changed,
        "failed_cases": change.failed,
        "clocks": {
            name: {
                "earlier": s.earlier,
                "later": s.later,
                "added": s.added,
                "stopped": s.stopped,
                "same_deadline": s.same_deadline,
                "largest_shift_seconds": s.largest.total_seconds(),
            }
            for name, s in sorted(change.clocks.items())
        },
        "examples": [row for example in change.examples for row in _rows(example)],
    }


def _rows(event: DeadlinesCorrected) -> list[dict[str, Any]]:
    def at(clock: Any, field: str) -> str | None:
        return None if clock is None else getattr(clock, field).isoformat()

    return [
        {
            "case_id": event.case_id,
            "clock": c.name,
            "old_deadline": at(c.before, "deadline"),
            "new_deadline": at(c.after, "deadline"),
            "old_warning_at": at(c.before, "warning_at"),
            "new_warning_at": at(c.after, "warning_at"),
            "calendar": None if c.after is None else c.after.calendar,
        }
        for c in event.corrections
    ]


def _print(change: PolicyChange, as_json: bool, verb: str) -> None:
    data = summary(change)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(
        f"SLA policy {change.to_version} (applied before: {change.from_version or 'none recorded'}):"
        f" {change.looked_at} open cases looked at, {change.changed} {verb}"
    )
    for name, s in data["clocks"].items():
        kinds = ("earlier", "later", "added", "stopped", "same_deadline")
        moved = ", ".join(f"{s[k]} {k.replace('_', ' ')}" for k in kinds if s[k])
        shift = (
            f"; largest shift {_duration(s['largest_shift_seconds'])}" if s["earlier"] + s["later"] else ""
        )
        print(f"  {name:<28} {moved}{shift}")
    if data["examples"]:
        print("examples (case, clock, old deadline -> new deadline):")
    for row in data["examples"]:
        old, new = row["old_deadline"] or "(added)", row["new_deadline"] or "(stops)"
        print(f"  {row['case_id']}  {row['clock']}  {old} -> {new}")
    for case_id in change.failed[:20]:
        print(f"  failed, not corrected: {case_id}")


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"
