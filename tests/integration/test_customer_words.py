"""The customer's words on the real PostgreSQL: kept sealed with the customer's key, shown to staff on the case
(API and console), left out of the outgoing events, and read as the erased marker once the key row is gone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.data_keys import ERASED, Keyring, MissingMasterKey, parse_master_keys
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.key_rotation import rewrap_keys
from service.adapters.postgres.projections import check_cases, rebuild_cases
from service.adapters.sentiment import VaderSentiment
from service.api_tokens import ApiToken
from service.app.intake import apply_signals
from service.bootstrap import Service, SystemClock, http_app, intake_rules
from service.config import Settings
from service.domain.signals import Signal, SignalKind
from tests.support import (
    AGENT,
    AGENT_TOKEN,
    AUTH,
    DATA_KEYS,
    MANAGER,
    MANAGER_TOKEN,
    TOKEN,
    case_id_of,
    suite_keyring,
)

WORDS = "Water came through the ceiling after the repair. Nobody <b>called</b> back & I'm furious."
SUMMARY = "Water came through the ceiling after the repair."
TOPICS = OutgoingTopics("case-events", "sla")


def complaint(customer: str, text: str = WORDS, signal_id: str = "w-1") -> Signal:
    now = datetime.now(UTC)
    return Signal(
        source="crm",
        id=signal_id,
        kind=SignalKind.COMPLAINT,
        occurred_at=now,
        received_at=now,
        customer_id=customer,
        text=text,
    )


async def land(pool: asyncpg.Pool, *signals: Signal) -> str:
    rules = intake_rules(Settings())
    store = PostgresIntakeStore(pool, suite_keyring())
    await apply_signals(list(signals), {}, "g", store, rules, VaderSentiment(), SystemClock())
    return await case_id_of(pool, signals[0].customer_id)


@pytest.fixture
async def app(pool: asyncpg.Pool, database_url: str) -> Any:
    tokens = {TOKEN: ("tester", "owner"), AGENT_TOKEN: ("ana", "agent"), MANAGER_TOKEN: ("mia", "manager")}
    settings = Settings(
        database_url=database_url,
        data_keys=DATA_KEYS,
        api_tokens={t: ApiToken(actor=a, role=r) for t, (a, r) in tokens.items()},
        root_causes=["other"],
    )
    service = Service(settings)
    service.pool = pool
    return http_app(service, settings)


@pytest.fixture
async def api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        yield client


async def signed_in(client: httpx.AsyncClient, token: str) -> None:
    page = await client.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    answer = await client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": token})
    assert answer.status_code in (200, 303), answer.text


async def test_the_signal_text_and_summary_show_on_the_case_in_the_api_and_the_console_escaped(
    pool: asyncpg.Pool, api: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    case_id = await land(pool, complaint("c-words"))
    case = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()
    assert case["summary"] == SUMMARY
    assert [s["text"] for s in case["signals"]] == [WORDS]
    await signed_in(browser, AGENT_TOKEN)
    page = (await browser.get(f"/console/cases/{case_id}")).text
    assert SUMMARY in page
    assert "Nobody &lt;b&gt;called&lt;/b&gt; back &amp; I&#39;m furious." in page and "<b>called</b>" not in page


async def test_stored_rows_hold_the_words_sealed_only(pool: asyncpg.Pool, api: httpx.AsyncClient) -> None:
    case_id = await land(pool, complaint("c-sealed"))
    version = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["version"]
    noted = await api.post(
        f"/v1/cases/{case_id}/notes",
        json={"note": "the ceiling stain is the size of a table"},
        headers={**AUTH, "If-Match": f'"{version}"', "Idempotency-Key": "note-1"},
    )
    assert noted.status_code == 200, noted.text
    for table, column in [("events", "data"), ("cases", "state"), ("signal_log", "text"), ("command_answers", "body")]:
        found = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column}::text LIKE '%ceiling%'")
        assert found == 0, f"{table}.{column} holds the words in clear"
    assert await pool.fetchval("SELECT count(*) FROM signal_log WHERE text LIKE 'sealed:%'") == 1
    answer = await api.post(  # the remembered answer opens again
        f"/v1/cases/{case_id}/notes",
        json={"note": "the ceiling stain is the size of a table"},
        headers={**AUTH, "If-Match": f'"{version}"', "Idempotency-Key": "note-1"},
    )
    assert answer.json()["summary"] == SUMMARY


async def test_outgoing_case_events_carry_no_words_unless_free_text_is_published(pool: asyncpg.Pool) -> None:
    await land(pool, complaint("c-out"), complaint("c-out", "The ceiling fell in now.", "w-2"))
    async with PostgresEventFeed(pool).lease("words") as lease:
        assert lease is not None
        events = await lease.read_after(0, 100)
    published = b"".join(m.value for e in events for m in to_messages(e, TOPICS))
    assert len(events) >= 2 and b"ceiling" not in published and b"sealed:" not in published
    async with PostgresEventFeed(pool, suite_keyring()).lease("words-public") as lease:
        assert lease is not None
        events = await lease.read_after(0, 100)
    opened = b"".join(m.value for e in events for m in to_messages(e, TOPICS, free_text=True))
    assert b"The ceiling fell in now." in opened and b"sealed:" not in opened


async def test_a_deleted_customer_key_reads_as_erased_everywhere_and_a_rebuild_brings_nothing_back(
    pool: asyncpg.Pool, api: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    case_id = await land(pool, complaint("c-erased"))
    await pool.execute("DELETE FROM customer_keys WHERE customer_id = 'c-erased'")
    case = await api.get(f"/v1/cases/{case_id}", headers=AUTH)
    assert case.status_code == 200 and case.json()["summary"] == ERASED
    assert [s["text"] for s in case.json()["signals"]] == [ERASED]
    history = (await api.get(f"/v1/cases/{case_id}/events", headers=AUTH)).json()
    assert "ceiling" not in str(history)
    await signed_in(browser, TOKEN)
    page = await browser.get(f"/console/cases/{case_id}")
    assert page.status_code == 200 and ERASED in page.text and "ceiling" not in page.text
    async with pool.acquire() as conn:
        await rebuild_cases(conn, keyring=suite_keyring())
        assert (await check_cases(conn, keyring=suite_keyring())).differing == []
    # the customer writes again: a new key seals the new words; the old ones stay erased
    await land(pool, complaint("c-erased", "Still dripping.", "w-3"))
    again = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()
    assert [s["text"] for s in again["signals"]] == [ERASED, "Still dripping."] and again["summary"] == ERASED


async def test_staff_edit_the_summary_within_its_bound_and_their_role(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    case_id = await land(pool, complaint("c-summary"))
    version = (await api.get(f"/v1/cases/{case_id}", headers=AUTH)).json()["version"]

    async def edit(summary: str, who: dict[str, str], at: int) -> httpx.Response:
        return await api.put(
            f"/v1/cases/{case_id}/summary", json={"summary": summary}, headers={**who, "If-Match": f'"{at}"'}
        )

    too_long = await edit("x" * 281, AGENT, version)
    assert too_long.status_code == 422 and "summary" in too_long.text
    edited = await edit("  Leak  from the ceiling\tafter the repair ", AGENT, version)
    assert edited.status_code == 200, edited.text
    assert edited.json()["summary"] == "Leak from the ceiling after the repair"
    resolved = await api.post(
        f"/v1/cases/{case_id}/resolve",
        json={"resolution_type": "apology_only", "root_cause": "other", "prevention_action": "check seals"},
        headers={**MANAGER, "If-Match": f'"{edited.json()["version"]}"'},
    )
    assert resolved.status_code == 200, resolved.text
    at = resolved.json()["version"]
    refused = await edit("An agent's rewrite", AGENT, at)
    assert refused.status_code == 403 and "manager or owner" in refused.text
    assert (await edit("A manager's rewrite", MANAGER, at)).json()["summary"] == "A manager's rewrite"


async def test_rotation_rewraps_every_customer_key_and_the_old_master_key_can_then_go(pool: asyncpg.Pool) -> None:
    old, new = '"old": "b29vb29vb29vb29vb29vb29vb29vb29vb29vb29vb28="', '"new": "bm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm4="'
    before = Keyring(parse_master_keys("{" + old + "}", None))
    store = PostgresIntakeStore(pool, before)
    rules = intake_rules(Settings())
    signals = [complaint(f"c-rot-{i}", signal_id=f"r-{i}") for i in range(3)]
    await apply_signals(signals, {}, "g", store, rules, VaderSentiment(), SystemClock())
    during = parse_master_keys("{" + old + ", " + new + "}", "new")
    async with pool.acquire() as conn:
        assert await rewrap_keys(conn, during, batch=2) == 3
        assert await rewrap_keys(conn, during) == 0  # nothing is left under the old key
        after = Keyring(parse_master_keys("{" + new + "}", None))
        await after.check(conn)  # the old key is no longer needed
        with pytest.raises(MissingMasterKey, match="lacks the master key\(s\) new"):  # an instance not yet told
            await before.check(conn)
    found = await PostgresCaseReads(pool, after).get_case(await case_id_of(pool, "c-rot-1"))
    assert found is not None and found[0].signals[0].text == WORDS
