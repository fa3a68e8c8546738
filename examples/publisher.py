"""Publish one failure signal of every kind to Recovery Loop, made with the official CloudEvents SDK.

    pip install "cloudevents==2.2.0" aiokafka      # the SDK's Kafka binding is young: pin it
    python examples/publisher.py                   # bootstrap 127.0.0.1:19092, as `make run` serves it
    python examples/publisher.py --bootstrap kafka:9092 --customer cust-42
    KAFKA_BOOTSTRAP_SERVERS=kafka:9092 python examples/publisher.py

Each signal is a CloudEvent 1.0 (`cloudevents.core.v1.event.CloudEvent`) turned into a Kafka record by the
SDK's Kafka protocol binding (`cloudevents.core.bindings.kafka`): complaint, review and ticket in binary
content mode (attributes in `ce_*` headers, the value is data), nps and callback in structured mode (the
value is the whole event as JSON, `content-type: application/cloudevents+json`). Both modes are accepted on
every signal topic. The record key is the customer id, so one customer's signals stay in order.

What the service needs from you: a unique `id` per `source` (a re-send with the same pair is dropped as a
duplicate), a `time` with an offset, the `type` of the topic's kind, and `subject` equal to
`data.customer_id` if you send a subject. Then read the case:
`curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8080/v1/cases?customer_id=cust-42'`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings import kafka
from cloudevents.core.v1.event import CloudEvent

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
SOURCE = "/examples/publisher"
KINDS = ("complaint", "nps", "review", "callback", "ticket")
STRUCTURED = {"nps", "callback"}  # the others go in binary mode, to show both
DEFAULT_TOPICS = {kind: f"recovery.signals.{kind}.v1" for kind in KINDS}


def signal_data(kind: str, customer_id: str) -> dict[str, Any]:
    """A realistic payload of each kind (see schemas/signals/<kind>.data.schema.json for every field)."""
    common: dict[str, Any] = {
        "customer_id": customer_id,
        "customer_tier": "gold",
        "channel": "email",
        "job_id": "job-1017",
    }
    return {
        "complaint": {
            **common,
            "text": "The engineer never came, and nobody called.",
            "amount_at_stake": {"amount": "120.00", "currency": "EUR"},
        },
        "nps": {**common, "score": 2, "comment": "Third visit for the same leak."},
        "review": {**common, "rating": 1, "platform": "google", "text": "Missed appointment, again."},
        "callback": {
            **common,
            "original_job_id": "job-0999",
            "reason": "Leak came back",
            "days_since_visit": 3,
        },
        "ticket": {**common, "ticket_id": "TCK-5521", "priority": "high", "text": "Boiler still broken."},
    }[kind]


def signal_record(kind: str, customer_id: str, source: str = SOURCE) -> kafka.KafkaMessage:
    """One signal as a Kafka record (headers, key, value), built by the SDK."""
    event = CloudEvent(
        attributes={
            "id": str(uuid.uuid4()),  # unique per source; keep it stable if you re-send the same signal
            "source": source,
            "type": f"recovery.signal.{kind}",
            "subject": customer_id,
            "time": datetime.now(UTC),
            "datacontenttype": "application/json",
        },
        data=signal_data(kind, customer_id),
    )
    encode = kafka.to_structured_event if kind in STRUCTURED else kafka.to_binary_event
    return encode(event, key_mapper=lambda e: e.get_subject())


async def publish_all(
    bootstrap: str, customer_id: str, topics: Mapping[str, str] = DEFAULT_TOPICS, source: str = SOURCE
) -> list[tuple[str, kafka.KafkaMessage]]:
    """Publish one signal of every kind for the customer; returns (topic, record) as sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    sent = []
    try:
        for kind in KINDS:
            record = signal_record(kind, customer_id, source)
            key = record.key.encode() if isinstance(record.key, str) else record.key
            await producer.send_and_wait(
                topics[kind], record.value, key=key, headers=list(record.headers.items())
            )
            sent.append((topics[kind], record))
    finally:
        await producer.stop()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    parser.add_argument("--customer", default="cust-42", help="the customer id (default: %(default)s)")
    args = parser.parse_args()
    for topic, record in asyncio.run(publish_all(args.bootstrap, args.customer)):
        mode = "structured" if "ce_id" not in record.headers else "binary"
        print(f"{topic}: {mode} mode, key {record.key!r}")


if __name__ == "__main__":
    main()
