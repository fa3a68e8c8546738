"""`recovery projections rebuild` produces exactly the read model the live service built."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from bench.signal_mix import publish_mix, signal_mix
from service.adapters.postgres.projections import rebuild_cases
from service.config import Settings
from tests.support import AGENT, MANAGER, eventually, recovery_cli


async def work_some_cases(api: httpx.AsyncClient, ids: list[str]) -> None:
    for n, case_id in enumerate(ids[:5]):
        path = f"/v1/cases/{case_id}"
        await api.post(f"{path}/assign", json={"owner": "ana"}, headers=MANAGER)
        await api.post(f"{path}/steps", json={"kind": "email_customer"}, headers=AGENT)
        await api.post(f"{path}/steps/step-1/outcome", json={"outcome": "completed"}, headers=AGENT)
        comp = {"kind": "credit", "amount": "20", "currency": "EUR", "reason": "sorry"}
        await api.post(f"{path}/compensations", json=comp, headers=AGENT)
        body = {"resolution_type": "service_credit", "root_cause": "scheduling", "prevention_action": "x"}
        await api.post(f"{path}/resolve", json=body, headers=MANAGER)
        await api.post(f"{path}/follow-up", json={"satisfied": n % 2 == 0}, headers=AGENT)


async def test_the_rebuilt_read_model_equals_the_live_one_and_repairs_a_damaged_one(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, database_url: str
) -> None:
    await publish_mix(producer, settings.signal_topics(), list(signal_mix(1500, customers=200, seed=9)))
    conn = await asyncpg.connect(database_url)
    try:

        async def applied() -> bool:
            return await conn.fetchval("SELECT count(*) FROM signal_log") == 1500

        await eventually(applied, what="the signals applied")
        ids: list[Any] = await conn.fetchval(
            "SELECT array_agg(case_id ORDER BY case_id) FROM cases WHERE status = 'open'"
        )
        await work_some_cases(api, ids)
        report = await rebuild_cases(conn, check_only=True)
        assert report.streams == await conn.fetchval("SELECT count(*) FROM cases")
        assert report.differing == []

        checked = recovery_cli(database_url, "projections", "rebuild", "--check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert " 0 differ" in checked.stdout
        await conn.execute(
            "UPDATE cases SET state = (SELECT state FROM cases WHERE case_id = $1) WHERE case_id = $2",
            ids[0],
            ids[1],
        )
        damaged = recovery_cli(database_url, "projections", "rebuild", "--check")
        assert damaged.returncode == 1 and ids[1] in damaged.stdout
        assert recovery_cli(database_url, "projections", "rebuild").returncode == 0
        assert (await rebuild_cases(conn, check_only=True)).differing == []

        listed = recovery_cli(database_url, "cases", "list", "--status", "closed")
        assert listed.returncode == 0 and ids[0] in listed.stdout
        shown = recovery_cli(database_url, "cases", "show", ids[0])
        assert shown.returncode == 0 and '"case.closed"' in shown.stdout
        trends = recovery_cli(database_url, "trends")
        assert "scheduling" in trends.stdout
    finally:
        await conn.close()
