"""This build against another git revision, side by side in one run: the steady intake rate of each.

    python -m bench.compare --against <rev> [--signals 30000] [--rounds 3]

Both builds drain the same backlog on the same embedded broker and PostgreSQL, each into a fresh database
(migrated by the build itself) with a fresh consumer group, alternating which goes first in each round, so a
noisy minute of a shared machine weighs on both. Read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from bench.intake import embedded, end_to_end, publish, say, topics_for
from tests.infra import with_database


async def database_migrated_by(build: str | None, server_dsn: str) -> str:
    """A fresh database with the build's own migrations (`recovery migrate` run from its folder)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = with_database(server_dsn, name)
    migrating = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "migrate",
        cwd=build,
        env={**os.environ, "RECOVERY_DATABASE_URL": dsn, "RECOVERY_LOG_LEVEL": "WARNING"},
    )
    assert await migrating.wait() == 0, "the build's migrations failed"
    return dsn


@contextmanager
def checkout(revision: str) -> Iterator[str]:
    """A detached work tree of `revision`, removed afterwards."""
    here = Path(__file__).resolve().parent.parent
    folder = Path(tempfile.mkdtemp(prefix="recovery-compare-")) / "build"
    subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(folder), revision], check=True)
    try:
        yield str(folder)
    finally:
        subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(folder)], check=False)


async def main(against: str, other: str, count: int, customers: int, rounds: int) -> None:
    with embedded() as (bootstrap, server_dsn):
        topics = topics_for(uuid.uuid4().hex[:6])
        say(f"publishing {count:,} signals for {customers:,} customers")
        await publish(bootstrap, topics, count, customers)
        builds = {"this build": None, against: other}
        rates: dict[str, list[float]] = {name: [] for name in builds}
        for round_ in range(rounds):
            order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
            for name in order:
                say(f"round {round_ + 1}: {name}")
                steady, _, _ = await end_to_end(
                    bootstrap,
                    await database_migrated_by(builds[name], server_dsn),
                    topics,
                    count,
                    2000,
                    build=builds[name],
                )
                rates[name].append(steady)
        say("\nsteady signals/s per round")
        for name, values in rates.items():
            say(f"  {name:<20} " + "  ".join(f"{v:>8,.0f}" for v in values))
        ratios = [new / old for new, old in zip(rates["this build"], rates[against], strict=True)]
        say("  ratio this / other  " + "  ".join(f"{r:>8.3f}" for r in ratios))
        say(f"  median ratio        {statistics.median(ratios):>8.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", required=True, help="a git revision, e.g. HEAD~3 or a commit id")
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with checkout(args.against) as folder:
        asyncio.run(main(args.against, folder, args.signals, args.customers, args.rounds))
