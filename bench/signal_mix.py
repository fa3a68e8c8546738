"""A realistic, reproducible mix of signals (all five kinds) for tests, the demo and the benchmark."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.signals import SignalKind

COMPLAINTS = [
    "The technician was two hours late and nobody called.",
    "They never showed up for the appointment.",
    "The dishwasher is broken again after the repair.",
    "I was overcharged on my invoice.",
    "Water leaked and damaged the kitchen floor.",
    "Absolutely terrible, rude and unprofessional staff. Worst service ever, I am furious!",
    "I smelled gas after the visit, this is a safety hazard.",
    "If this is not fixed I will contact my lawyer.",
    "Not what I expected, a bit disappointed.",
]


@dataclass(frozen=True)
class MixedSignal:
    kind: SignalKind
    customer_id: str
    signal_id: str
    at: datetime
    data: dict[str, Any]


SERVICES = ["broadband", "boiler-servicing", "plumbing", "appliance-repair", "tv"]
AREAS = 400


def where(customer: int) -> dict[str, str]:
    """Where a customer is served, fixed per customer: 2,000 scopes of service and area, a customer or two in
    each, so the incident rules count every batch and none crosses (a surge is bench/intake.py's to add)."""
    return {"service": SERVICES[customer % len(SERVICES)], "region": f"area-{customer // len(SERVICES) % AREAS:03d}"}


def signal_mix(
    count: int, customers: int, seed: int = 7, start: datetime | None = None
) -> Iterator[MixedSignal]:
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(hours=2)
    for n in range(count):
        kind = rng.choice(list(SignalKind))
        number = rng.randrange(customers)
        at = start + timedelta(milliseconds=n)
        data = {**_data(kind, rng), **where(number)}
        yield MixedSignal(kind, f"cust-{number:06d}", f"sig-{seed}-{n}", at, data)


def _data(kind: SignalKind, rng: random.Random) -> dict[str, Any]:
    common: dict[str, Any] = {
        "customer_tier": rng.choice(["standard", "standard", "gold", "platinum"]),
        "channel": rng.choice(["phone", "email", "chat", "social", "web", "in_person"]),
        "job_id": f"job-{rng.randrange(10**6)}",
    }
    if kind is SignalKind.COMPLAINT:
        return {**common, "text": rng.choice(COMPLAINTS)}
    if kind is SignalKind.NPS:
        return {**common, "score": rng.randrange(11), "comment": "survey answer"}
    if kind is SignalKind.REVIEW:
        return {**common, "rating": rng.randrange(1, 6), "platform": "trustpilot", "text": "review text"}
    if kind is SignalKind.CALLBACK:
        return {
            **common,
            "original_job_id": f"job-{rng.randrange(10**6)}",
            "days_since_visit": rng.randrange(30),
        }
    amount = {"amount": f"{rng.randrange(20, 900)}.00", "currency": "EUR"}
    priority = rng.choice(["low", "normal", "high", "urgent"])
    return {
        **common,
        "ticket_id": f"T-{rng.randrange(10**6)}",
        "priority": priority,
        "amount_at_stake": amount,
    }


def topic_for(kind: SignalKind, topics: dict[str, SignalKind]) -> str:
    return next(topic for topic, k in topics.items() if k is kind)


async def publish_mix(
    producer: Any, topics: dict[str, SignalKind], signals: list[MixedSignal], structured_every: int = 3
) -> dict[tuple[str, int], int]:
    """Publish in both CloudEvents modes (every n-th structured), key = customer id; returns the end offsets."""
    from service.adapters.kafka.cloudevents import encode_binary, encode_structured

    pending = []
    ends: dict[tuple[str, int], int] = {}
    for n, s in enumerate(signals):
        encode = encode_structured if structured_every and n % structured_every == 0 else encode_binary
        headers, body = encode(
            id=s.signal_id,
            source="bench-upstream",
            type=f"recovery.signal.{s.kind.value}",
            subject=s.customer_id,
            time=s.at,
            data={"customer_id": s.customer_id, **s.data},
        )
        pending.append(
            await producer.send(topic_for(s.kind, topics), body, key=s.customer_id.encode(), headers=headers)
        )
        if len(pending) >= 5000:
            _note_ends(ends, await asyncio.gather(*pending))
            pending.clear()
    _note_ends(ends, await asyncio.gather(*pending))
    return ends


def _note_ends(ends: dict[tuple[str, int], int], acks: list[Any]) -> None:
    for ack in acks:
        key = (ack.topic, ack.partition)
        ends[key] = max(ends.get(key, 0), ack.offset + 1)
