"""PostgreSQL side of an erasure: every row that names the customer or holds their words, in one transaction.

- events: each of the customer's cases' stored events has its customer id replaced by the pseudonym and each
  personal text by [erased] (the paths are the registry's, from the `CustomerId` and `PersonalText` markers),
  so a rebuild replays the erased cases and nothing comes back; then `case.personal_data_erased` is appended.
  The latest case's carries the customer id until the relay has published recovery.customer.erased: the relay
  then nulls it (`forget_published_erasures`), the only id kept, for seconds, for other services to erase theirs.
- cases: the snapshots, written by the erasure's evolve (the pseudonym, every text the literal [erased]).
- signal_log: the pseudonym and [erased] for the text, for every signal of the customer's (those that opened
  no case too).
- command_answers: the answers remembered for those cases hold the case id and version, no text (an earlier
  release's HTTP bodies are rewritten so first); one scoped to the customer is scoped to the pseudonym.
- customer_keys: the customer's key is deleted, so any sealed copy left anywhere (a backup) stays unreadable.
- erased_customers: the keyed hash of the id (under each configured master key), the pseudonym and the cases.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from service.adapters.postgres.case_writes import Connection, append_events, save_cases
from service.adapters.postgres.command_store import CUSTOMER_LOCK, upgrade_answers
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.errors import store_transaction
from service.app.erasure import Erasure
from service.domain.case import CaseState
from service.domain.intake import NewEvent
from service.domain.personal import ERASED_TEXT, map_personal_json
from service.domain.registry import CUSTOMER_ID_PATHS, PERSONAL_PATHS, SNAPSHOT

ERASURE_TYPE = "case.personal_data_erased"


class PostgresErasureTransaction:
    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    async def erased_before(self, customer_id: str) -> Erasure | None:
        row = await self._conn.fetchrow(
            "SELECT pseudonym, case_ids, erased_by, erased_at FROM erased_customers WHERE digest = ANY($1::bytea[])"
            " ORDER BY erased_at DESC LIMIT 1",
            self._keyring.master.customer_digests(customer_id),
        )
        if row is None:
            return None
        return Erasure(row["pseudonym"], tuple(row["case_ids"]), row["erased_at"], row["erased_by"])

    async def cases(self, customer_id: str) -> list[CaseState]:
        # the lock every compensation request of the customer's takes first: none is granted meanwhile
        await self._conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", CUSTOMER_LOCK, customer_id)
        rows = await self._conn.fetch(
            "SELECT state, state_version FROM cases WHERE customer_id = $1 ORDER BY ordinal", customer_id
        )
        return [SNAPSHOT.read(r["state_version"], r["state"]) for r in rows]

    async def now(self) -> datetime:
        return await self._conn.fetchval("SELECT now()")  # type: ignore[no-any-return]

    async def erase(
        self, customer_id: str, erasure: Erasure, events: Sequence[NewEvent], cases: Sequence[CaseState]
    ) -> bool:
        return await self._erase(customer_id, erasure, events, cases)

    async def _erase(
        self, customer_id: str, erasure: Erasure, events: Sequence[NewEvent], cases: Sequence[CaseState]
    ) -> bool:
        conn, pseudonym, case_ids = self._conn, erasure.pseudonym, list(erasure.case_ids)
        await _erase_events(conn, case_ids, pseudonym)
        await conn.execute("UPDATE cases SET customer_id = $2 WHERE customer_id = $1", customer_id, pseudonym)
        await save_cases(conn, cases)  # (an upsert: it never moves a case to another customer)
        logged = await conn.fetchval(
            "WITH erased AS (UPDATE signal_log SET customer_id = $2, text = CASE WHEN text IS NOT NULL THEN $3 END"
            " WHERE customer_id = $1"
            " RETURNING 1) SELECT count(*) FROM erased",
            customer_id,
            pseudonym,
            ERASED_TEXT,
        )
        customer_target, pseudonym_target = f"customer/{customer_id}", f"customer/{pseudonym}"
        await upgrade_answers(conn, self._keyring, [*case_ids, customer_target])
        await conn.execute(
            "UPDATE command_answers SET target = $2 WHERE target = $1", customer_target, pseudonym_target
        )
        keys = await conn.fetchval(
            "WITH gone AS (DELETE FROM customer_keys WHERE customer_id = $1 RETURNING 1) SELECT count(*) FROM gone",
            customer_id,
        )
        if not (cases or logged or keys):
            return False
        [digest, *_] = self._keyring.master.customer_digests(customer_id)
        await conn.execute(
            "INSERT INTO erased_customers (digest, pseudonym, case_ids, erased_by, erased_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO UPDATE SET pseudonym = EXCLUDED.pseudonym,"
            " case_ids = EXCLUDED.case_ids, erased_by = EXCLUDED.erased_by, erased_at = EXCLUDED.erased_at",
            digest,
            pseudonym,
            case_ids,
            erasure.erased_by,
            erasure.erased_at,
        )
        await append_events(conn, events)  # last: it takes the append lock, held to commit
        return True


async def _erase_events(conn: Connection, case_ids: list[str], pseudonym: str) -> None:
    """Every stored event of these cases with the pseudonym for the customer id and [erased] for each text."""
    rows = await conn.fetch(
        "SELECT position, type, data::text FROM events WHERE stream_id = ANY($1::text[]) ORDER BY position",
        case_ids,
    )
    changed: list[tuple[int, str]] = []
    for row in rows:
        texts, ids = PERSONAL_PATHS.get(row["type"], ()), CUSTOMER_ID_PATHS.get(row["type"], ())
        if not texts and not ids:
            continue
        data = json.loads(row["data"])
        map_personal_json(data, texts, lambda _: ERASED_TEXT)
        map_personal_json(data, ids, lambda _: pseudonym)
        erased = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if erased != row["data"]:
            changed.append((row["position"], erased))
    if changed:
        await conn.execute(
            "UPDATE events SET data = c.data::json FROM unnest($1::bigint[], $2::text[]) AS c(position, data)"
            " WHERE events.position = c.position",
            [p for p, _ in changed],
            [d for _, d in changed],
        )


async def forget_published_erasures(conn: Connection, positions: Sequence[int]) -> None:
    """Null the customer id on erasure events the relay has published (recovery.customer.erased is out)."""
    if positions:
        await conn.execute(
            "UPDATE events SET data = jsonb_set(data::jsonb, '{customer_id}', 'null')::json"
            " WHERE position = ANY($1::bigint[]) AND type = $2 AND data->>'customer_id' IS NOT NULL",
            list(positions),
            ERASURE_TYPE,
        )


class PostgresErasureStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self._pool = pool
        self._keyring = keyring

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresErasureTransaction]:
        async with store_transaction(self._pool) as conn:
            yield PostgresErasureTransaction(conn, self._keyring)

    async def erased(self, customer_ids: Sequence[str]) -> set[str]:
        """Which of these customers were erased (`recovery dlq replay` skips their dead letters)."""
        wanted = sorted(set(customer_ids))
        digests = {d: c for c in wanted for d in self._keyring.master.customer_digests(c)}
        if not digests:
            return set()
        rows = await self._pool.fetch(
            "SELECT digest FROM erased_customers WHERE digest = ANY($1::bytea[])", list(digests)
        )
        return {digests[bytes(r["digest"])] for r in rows}
