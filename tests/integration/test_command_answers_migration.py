"""Migration 006 scopes Idempotency-Keys to their target and keeps every answer given before it; answers
remembered with their HTTP body (before migration 021) still name their case."""

from __future__ import annotations

import json
from importlib import resources

import asyncpg

from service.adapters.postgres.command_store import PostgresCommandTransaction, upgrade_answers
from service.adapters.postgres.migrate import migrate
from tests.integration.api_only import api_over
from tests.support import AGENT, MANAGER, suite_keyring


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
        assert prior is not None and prior[0] == "add_step" and prior[1].case_id == "case-a"
        assert prior[1].version is None and not prior[1].opened  # the body showed no version: the case as it is
        opened = await tx.prior_answer("mia", "customer/cust-b", "k-1")
        assert opened is not None and opened[1].case_id == "case-b" and opened[1].opened
        assert await tx.prior_answer("ana", "case-other", "k-1") is None
    finally:
        await conn.close()


async def test_an_answer_remembered_with_its_sealed_body_is_given_again_and_rewritten_before_an_erasure(
    pool: asyncpg.Pool, database_url: str
) -> None:
    body = {"customer_id": "legacy-1", "severity": "major", "reason": "escalated"}
    async with api_over(pool, database_url) as api:
        opened = (await api.post("/v1/cases", json=body, headers=MANAGER)).json()
        path, key = f"/v1/cases/{opened['case_id']}", {"Idempotency-Key": "note-1"}
        first = await api.post(f"{path}/notes", json={"note": "called back"}, headers={**AGENT, **key})
        assert first.status_code == 200
        keyring = suite_keyring()
        async with pool.acquire() as conn:  # the row as the release before migration 021 remembered it
            sealed = (await keyring.of_customers(conn, ["legacy-1"]))["legacy-1"].seal(json.dumps(first.json()))
            await conn.execute(
                "UPDATE command_answers SET case_id = NULL, version = NULL, opened = NULL, status = 200,"
                " body = $1::json WHERE key = 'note-1'",
                json.dumps({"sealed_body": sealed}),
            )
        await api.post(f"{path}/notes", json={"note": "a later note"}, headers=AGENT)
        again = await api.post(f"{path}/notes", json={"note": "called back"}, headers={**AGENT, **key})
        assert again.status_code == 200 and again.json() == first.json()  # the case at that version

        async with pool.acquire() as conn:
            await upgrade_answers(conn, keyring, [opened["case_id"]])
            row = await conn.fetchrow("SELECT case_id, version, body FROM command_answers WHERE key = 'note-1'")
        assert (row["case_id"], row["version"], row["body"]) == (opened["case_id"], first.json()["version"], None)
        after = await api.post(f"{path}/notes", json={"note": "called back"}, headers={**AGENT, **key})
        assert after.json() == first.json()
