"""Erasure end to end, with the real database, broker, relay and console: after an owner erases a customer, no
stored row, snapshot, rebuild or later outgoing record names them or holds their words, the counts stay, and
recovery.customer.erased goes out once."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from service.adapters.postgres.projections import check_cases, rebuild_cases
from service.bootstrap import Service, http_app
from service.config import Settings
from service.domain.signals import SignalKind
from tests.infra import Kafka
from tests.support import (
    AGENT,
    AUTH,
    MANAGER,
    TOKEN,
    eventually,
    publish,
    relay_caught_up,
    signal_event,
    suite_keyring,
)

CUSTOMER = "cust-to-erase-7731"
WORDS = "Water came through the ceiling after the repair. Nobody called back."
NOTE = "ceiling stain is the size of a table"

# every column the service stores a customer's id or words in
STORED = [
    ("events", "data::text"),
    ("cases", "customer_id"),
    ("cases", "state::text"),
    ("signal_log", "customer_id"),
    ("signal_log", "coalesce(text, '')"),
    ("command_answers", "target"),
    ("command_answers", "body::text"),
    ("customer_keys", "customer_id"),
]


async def holding(pool: asyncpg.Pool, needle: str) -> list[str]:
    found = []
    for table, column in STORED:
        if await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} LIKE '%' || $1 || '%'", needle):
            found.append(f"{table}.{column}")
    return found


async def case_page(service: Service, settings: Settings, case_id: str) -> str:
    """The case as staff see it in the console (the owner signed in, over TLS: the cookie is Secure)."""
    transport = httpx.ASGITransport(app=http_app(service, settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
        page = await browser.get("/console/sign-in")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = await browser.post("/console/sign-in", data={"csrf": csrf, "token": TOKEN})
        assert signed.status_code in (200, 303), signed.text
        shown = await browser.get(f"/console/cases/{case_id}")
    assert shown.status_code == 200
    return shown.text


async def test_erasure_end_to_end(
    service: Service, api: httpx.AsyncClient, producer: AIOKafkaProducer, settings: Settings, kafka: Kafka
) -> None:
    pool = service.pool
    assert pool is not None
    await publish(producer, settings.topic_complaint, CUSTOMER, signal_event(SignalKind.COMPLAINT, CUSTOMER, {"text": WORDS, "channel": "phone"}))
    await publish(producer, settings.topic_nps, CUSTOMER, signal_event(SignalKind.NPS, CUSTOMER, {"score": 10, "comment": "love the app"}))

    async def opened() -> dict[str, Any] | None:
        page = (await api.get("/v1/cases", params={"customer_id": CUSTOMER}, headers=AGENT)).json()
        logged = await pool.fetchval("SELECT count(*) FROM signal_log WHERE customer_id = $1", CUSTOMER)
        return page["items"][0] if page["items"] and logged == 2 else None

    case = await eventually(opened, what="the case and both signals logged")
    case_id, path = case["case_id"], f"/v1/cases/{case['case_id']}"
    noted = await api.post(f"{path}/notes", json={"note": NOTE}, headers={**AGENT, "Idempotency-Key": "n-1"})
    assert noted.status_code == 200, noted.text
    shown = (await api.get(path, headers=AUTH)).json()
    assert shown["summary"] and [s["text"] for s in shown["signals"]] == [WORDS]

    assert (await api.post(f"/v1/customers/{CUSTOMER}/erase", headers=MANAGER)).status_code == 403
    refused = await api.post(f"/v1/customers/{CUSTOMER}/erase", headers=AUTH)
    assert refused.status_code == 409 and case_id in refused.json()["detail"] and "open case" in refused.json()["detail"]
    resolved = await api.post(
        f"{path}/resolve",
        json={"resolution_type": "apology_only", "root_cause": "scheduling", "prevention_action": "call back the same day"},
        headers=MANAGER,
    )
    assert resolved.status_code == 200, resolved.text
    before = (await api.get(path, headers=AUTH)).json()
    counts_before = (await api.get("/v1/trends/root-causes", headers=AUTH)).json()

    erased = await api.post(f"/v1/customers/{CUSTOMER}/erase", headers=AUTH)
    assert erased.status_code == 200, erased.text
    pseudonym = erased.json()["pseudonym"]
    assert erased.json()["case_ids"] == [case_id] and not erased.json()["repeated"] and CUSTOMER not in pseudonym
    again = await api.post(f"/v1/customers/{CUSTOMER}/erase", headers=AUTH)
    assert again.status_code == 200 and again.json()["repeated"] and again.json()["pseudonym"] == pseudonym

    # the API and the console: the pseudonym, [erased] texts, the counts as they were
    after = (await api.get(path, headers=AUTH)).json()
    assert after["customer_id"] == pseudonym and after["summary"] == "[erased]"
    assert [s["text"] for s in after["signals"]] == ["[erased]"]
    assert before["erased_at"] is None and after["erased_at"] == erased.json()["erased_at"]
    for kept in ("severity", "status", "reopen_count", "opened_at", "resolution_deadline", "customer_compensation"):
        assert after[kept] == before[kept], kept
    assert after["resolution"]["root_cause"] == "scheduling"
    assert after["resolution"]["prevention_action"] == "[erased]"
    assert (await api.get("/v1/trends/root-causes", headers=AUTH)).json() == counts_before
    history = (await api.get(f"{path}/events", headers=AUTH)).text
    assert CUSTOMER not in history and "ceiling" not in history
    assert (await api.get("/v1/cases", params={"customer_id": CUSTOMER}, headers=AUTH)).json()["items"] == []
    page = await case_page(service, settings, case_id)
    assert CUSTOMER not in page and "ceiling" not in page and pseudonym in page

    # stored rows, once the relay has published the erasure (then the event forgets the id too)
    async def forgotten() -> bool:
        return await relay_caught_up(pool) and not await holding(pool, CUSTOMER)

    await eventually(forgotten, what=f"no row naming the customer; still in {await holding(pool, CUSTOMER)}")
    assert await holding(pool, "ceiling") == [] and await holding(pool, "love the app") == []
    assert await pool.fetchval("SELECT count(*) FROM signal_log WHERE customer_id = $1", pseudonym) == 2
    async with pool.acquire() as conn:  # a rebuild replays the erased log: nothing comes back
        await rebuild_cases(conn, keyring=suite_keyring())
        assert (await check_cases(conn, keyring=suite_keyring())).differing == []
    assert await holding(pool, CUSTOMER) == [] and await holding(pool, "ceiling") == []
    assert (await api.get(path, headers=AUTH)).json()["customer_id"] == pseudonym

    # Kafka: recovery.customer.erased once, naming the customer and their cases; the case's erasure without them
    consumer = AIOKafkaConsumer(settings.topic_case_events, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:

        async def both() -> list[Any] | None:
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for rs in batch.values() for r in rs)
            types = [dict(r.headers)["ce_type"] for r in records]
            return records if b"recovery.case.personal_data_erased" in types else None

        await eventually(both, what="the erasure on the case-events topic")
    finally:
        await consumer.stop()
    notices = [r for r in records if dict(r.headers)["ce_type"] == b"recovery.customer.erased"]
    assert len(notices) == 1
    notice = json.loads(notices[0].value)
    assert notice["customer_id"] == CUSTOMER and notice["case_ids"] == [case_id] and notice["pseudonym"] == pseudonym
    erasure_index = records.index(notices[0])
    for later in records[erasure_index + 1 :] + [r for r in records if dict(r.headers)["ce_type"] == b"recovery.case.personal_data_erased"]:
        assert CUSTOMER.encode() not in later.value and b"ceiling" not in later.value

    # the customer comes back: a new case, a new id, nothing of the old words
    await publish(producer, settings.topic_complaint, CUSTOMER, signal_event(SignalKind.COMPLAINT, CUSTOMER, {"text": "Again no hot water.", "channel": "phone"}))

    async def returned() -> dict[str, Any] | None:
        page = (await api.get("/v1/cases", params={"customer_id": CUSTOMER}, headers=AGENT)).json()
        return page["items"][0] if page["items"] else None

    new = await eventually(returned, what="the returning customer's new case")
    assert new["case_id"] != case_id
    fresh = (await api.get(f"/v1/cases/{new['case_id']}", headers=AUTH)).json()
    assert [s["text"] for s in fresh["signals"]] == ["Again no hot water."]
