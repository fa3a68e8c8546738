"""`make demo`: with `make run` going, publish a realistic mix of signals and show the cases they made.

All five kinds, both CloudEvents modes, a few duplicates and a few malformed messages (which go to
the dead-letter topic). Reads where the embedded broker and the API are from .data/dev.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from service.adapters.kafka.cloudevents import encode_binary, encode_structured
from service.config import Settings

STORIES: list[tuple[str, str, dict[str, Any], str]] = [
    # (customer, kind, data, what a person would say about it)
    (
        "ana",
        "complaint",
        {"text": "The technician was two hours late and nobody called.", "channel": "phone"},
        "late visit",
    ),
    ("ana", "nps", {"score": 2, "comment": "Still unhappy."}, "then a detractor score: escalates"),
    (
        "ben",
        "review",
        {"rating": 1, "platform": "google", "customer_tier": "platinum", "channel": "web"},
        "1-star, platinum",
    ),
    ("cho", "complaint", {"text": "I smelled gas after the boiler service.", "channel": "social"}, "safety"),
    ("dev", "callback", {"original_job_id": "job-881", "days_since_visit": 3}, "repeat visit"),
    (
        "eli",
        "ticket",
        {"ticket_id": "T-4411", "priority": "high", "channel": "email"},
        "high-priority ticket",
    ),
    ("eli", "ticket", {"ticket_id": "T-4412", "escalated": True, "channel": "email"}, "escalated ticket"),
    ("fay", "nps", {"score": 9}, "a promoter: not a failure"),
    (
        "gus",
        "complaint",
        {
            "text": "Overcharged twice on the invoice.",
            "category": "billing_error",
            "amount_at_stake": {"amount": "640.00", "currency": "EUR"},
        },
        "large billing error",
    ),
    ("hal", "review", {"rating": 3, "platform": "trustpilot"}, "lukewarm review"),
]


def dev_info() -> dict[str, Any]:
    path = Path(".data/dev.json")
    if not path.exists():
        sys.exit("make demo needs `make run` going in another terminal (no .data/dev.json yet)")
    info: dict[str, Any] = json.loads(path.read_text())
    return info


async def publish(producer: AIOKafkaProducer, settings: Settings, tag: str) -> list[str]:
    topics = {kind.value: topic for topic, kind in settings.signal_topics().items()}
    at = datetime.now(UTC) - timedelta(minutes=30)
    customers = []
    for n, (who, kind, data, _) in enumerate(STORIES):
        customer = f"demo-{tag}-{who}"
        customers.append(customer)
        encode = encode_structured if n % 2 else encode_binary
        headers, body = encode(
            id=f"{tag}-{n}",
            source="demo/crm",
            type=f"recovery.signal.{kind}",
            subject=customer,
            time=at + timedelta(minutes=n),
            data={"customer_id": customer, **data},
        )
        await producer.send_and_wait(topics[kind], body, key=customer.encode(), headers=headers)
        if n in (0, 3):  # the same signal delivered again changes nothing
            await producer.send_and_wait(topics[kind], body, key=customer.encode(), headers=headers)
    bad = f"demo-{tag}-bad"
    await producer.send_and_wait(topics["complaint"], b"{this is not json", key=bad.encode())
    headers, body = encode_binary(
        id=f"{tag}-bad-1",
        source="demo/crm",
        type="recovery.signal.nps",
        subject=bad,
        time=at,
        data={"customer_id": bad, "score": 11},
    )
    await producer.send_and_wait(topics["nps"], body, key=bad.encode(), headers=headers)
    print(f"published {len(STORIES)} signals (+2 duplicates, +2 malformed -> {settings.topic_dlq})")
    return sorted(set(customers))


async def show(api: str, token: str, customers: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    expected = {f"demo-{c.split('-')[1]}-{who}" for c in customers[:1] for who, *_ in STORIES} - {
        c for c in customers if c.endswith("-fay")
    }
    deadline = time.monotonic() + 30
    cases: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=5) as client:
        while time.monotonic() < deadline and set(cases) != expected:
            for customer in expected - set(cases):
                items = (await client.get("/v1/cases", params={"customer_id": customer})).json()["items"]
                if items and not (customer.endswith("-ana") and items[0]["severity"] == "minor"):
                    cases[customer] = items[0]
            await asyncio.sleep(0.2)
    print(f"\n{'customer':<22} {'severity':<9} {'resolution deadline':<21} reasons")
    for customer in sorted(cases):
        case = cases[customer]
        reasons = "; ".join(", ".join(s["reasons"]) for s in case["signals"])
        print(f"{customer:<22} {case['severity']:<9} {case['resolution_deadline']:<21} {reasons}")
    missing = expected - set(cases)
    if missing:
        print(f"\nnot there yet: {', '.join(sorted(missing))} (is `make run` consuming?)")
    print(
        f"\nno case for demo-*-fay: an NPS of 9 is not a failure. Full history: GET {api}/v1/cases/<case_id>"
    )


async def main() -> None:
    info = dev_info()
    settings = Settings(kafka_bootstrap_servers=info["kafka"], kafka_idempotent_producer=False)
    producer = AIOKafkaProducer(bootstrap_servers=info["kafka"])
    await producer.start()
    try:
        customers = await publish(producer, settings, uuid.uuid4().hex[:4])
    finally:
        await producer.stop()
    await show(info["api"], next(iter(info["tokens"])), customers)


if __name__ == "__main__":
    asyncio.run(main())
