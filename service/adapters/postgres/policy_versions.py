"""SLA policy versions: which one the service applied (sla_policy_versions), the preview of a new one over the
open cases, and applying it: one instance at a time (a session advisory lock), each case its own append with
optimistic concurrency, a case that fails logged by id and skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from service.adapters.postgres.case_writes import Connection
from service.adapters.postgres.command_store import PostgresCommandStore
from service.adapters.postgres.data_keys import Keyring
from service.app.policy import apply_policy
from service.domain.policy_change import PolicyChange, corrections
from service.domain.registry import SNAPSHOT, UnreadableEvent
from service.domain.sla import SlaPolicy

log = structlog.get_logger()
_APPLY_LOCK = (0x534C_4150, 0)  # "SLAP": apart from the append, rebuild and migration locks
BATCH = 500  # open case ids read at a time


class PolicyApplyRunning(Exception):
    """Another instance, or `recovery policy apply`, is applying an SLA policy now."""


@dataclass(frozen=True)
class AppliedVersion:
    version: str
    complete: bool  # every open case looked at was corrected; False: the next start applies it again


async def applied_version(conn: Connection) -> AppliedVersion | None:
    """The version last applied (None: none ever was)."""
    row = await conn.fetchrow("SELECT version, failed FROM sla_policy_versions ORDER BY id DESC LIMIT 1")
    return None if row is None else AppliedVersion(row["version"], row["failed"] == 0)


async def diff_policy(pool: asyncpg.Pool, policy: SlaPolicy, examples: int = 10) -> PolicyChange:
    """What applying the policy would do to the open cases now, read in one read-only snapshot: writes nothing."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        last = await applied_version(conn)
        change = PolicyChange(None if last is None else last.version, policy.version, keep=examples)
        now = await conn.fetchval("SELECT now()")
        cursor = conn.cursor(
            "SELECT case_id, state, state_version FROM cases WHERE status = 'open' ORDER BY case_id"
        )
        async for row in cursor:
            try:
                state = SNAPSHOT.read(row["state_version"], row["state"])
            except UnreadableEvent:  # listed in the preview; applying it fails the same way, and is logged
                change.fail(row["case_id"])
                continue
            change.add(corrections(state, policy, now, change.from_version))
    return change


async def apply_new_policy(
    pool: asyncpg.Pool,
    keyring: Keyring,
    policy: SlaPolicy,
    batch: int = BATCH,
    examples: int = 10,
    again: bool = False,
    failed: Callable[[str, Exception], None] | None = None,
) -> PolicyChange | None:
    """Correct the open cases to the policy's version and record it; None when that version is the one last
    applied in full, unless `again` (a case opened meanwhile under an older file, by an instance not restarted
    yet, is then corrected; every other case is left as it is). PolicyApplyRunning when another holds the lock.
    A case that cannot be corrected is told to `failed` (default: logged by id) and skipped."""
    assert policy.version is not None, "only a policy file has a version to apply"
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *_APPLY_LOCK):
            raise PolicyApplyRunning("another instance or `recovery policy apply` is applying an SLA policy")
        try:
            last = await applied_version(conn)
            if last is not None and last.version == policy.version and last.complete and not again:
                return None
            from_version = None if last is None else last.version
            store = PostgresCommandStore(pool, keyring)
            change = await apply_policy(
                _open_case_ids(pool, batch), store, policy, from_version, failed or _logged, examples
            )
            await conn.execute(
                "INSERT INTO sla_policy_versions (version, looked_at, changed, failed) VALUES ($1, $2, $3, $4)",
                policy.version,
                change.looked_at,
                change.changed,
                len(change.failed),
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", *_APPLY_LOCK)
    return change


async def _open_case_ids(pool: asyncpg.Pool, batch: int) -> AsyncIterator[list[str]]:
    """The open cases' ids in batches, by id (a case opened meanwhile is under the new policy already)."""
    after = ""
    while ids := [
        r["case_id"]
        for r in await pool.fetch(
            "SELECT case_id FROM cases WHERE status = 'open' AND case_id > $1 ORDER BY case_id LIMIT $2",
            after,
            batch,
        )
    ]:
        yield ids
        after = ids[-1]


def _logged(case_id: str, error: Exception) -> None:
    log.error("sla_policy_case_failed", case_id=case_id, error=type(error).__name__)
