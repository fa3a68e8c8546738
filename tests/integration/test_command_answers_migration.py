"""Migration 006 scopes Idempotency-Keys to their target and keeps every answer given before it."""

from __future__ import annotations

import json
from importlib import resources

import asyncpg

from service.adapters.postgres.command_store import PostgresCommandTransaction
from service.adapters.postgres.migrate import migrate
from tests.support import suite_keyring


async def test_answers_given_before_the_scope_keep_answering_on_their_own_case(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        folder = resources.files("service.adapters.postgres") / "migrations"
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())"
        )
        for name in sorted(f.name for f in folder.iterdir() if f.name < "006"):
            await conn.execute((folder / name).read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        rows = [
            ("ana", "k-1", "add_step", 200, {"case_id": "case-a", "customer_id": "cust-a"}),
            ("mia", "k-1", "open", 201, {"case_id": "case-b", "customer_id": "cust-b"}),
        ]
        for actor, key, command, status, body in rows:
            await conn.execute(
                "INSERT INTO command_answers (actor, key, command, status, body) VALUES ($1, $2, $3, $4, $5)",
                actor,
                key,
                command,
                status,
                json.dumps(body),
            )

        assert "006_idempotency_key_scope.sql" in await migrate(conn)

        targets = {
            r["actor"]: r["target"] for r in await conn.fetch("SELECT actor, target FROM command_answers")
        }
        assert targets == {"ana": "case-a", "mia": "customer/cust-b"}
        tx = PostgresCommandTransaction(conn, suite_keyring())
        prior = await tx.prior_answer("ana", "case-a", "k-1")
        assert prior is not None and prior[0] == "add_step" and prior[1].body["case_id"] == "case-a"
        assert await tx.prior_answer("ana", "case-other", "k-1") is None
    finally:
        await conn.close()
