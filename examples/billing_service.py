"""A billing service for Recovery Loop: pay each compensation request once, answer settled or failed.

    pip install "cloudevents==2.2.0" aiokafka      # the SDK's Kafka binding is young: pin it
    python examples/billing_service.py             # bootstrap 127.0.0.1:19092, as `make run` serves it
    python examples/billing_service.py --bootstrap kafka:9092 --fail-above 200 --mode structured
    KAFKA_BOOTSTRAP_SERVERS=kafka:9092 python examples/billing_service.py

It consumes `recovery.compensation.requests.v1` (binary-mode CloudEvents of type
`recovery.compensation.requested`, keyed by the case id) and parses each record with the official
CloudEvents SDK's Kafka binding. It "pays" by printing, then answers on `recovery.compensation.results.v1`
with a CloudEvent made by the SDK: `recovery.compensation.settled` (data `request_id`, `reference`), or
`recovery.compensation.failed` (data `request_id`, `reason`) for an amount above `--fail-above`, a demo
rule. The service lands the answer on the case that asked (`GET /v1/cases/{id}`: status settled or failed).

Exactly once, as billing must do it:
- `request_id` is the idempotency key: one request, one payment, ever. A request seen again is not paid
  again; its stored answer is sent again, with the same CloudEvent id, and the service drops the repeat.
- A record seen again (same `source` and `id`: a redelivery) is skipped.
- Offsets are committed after the answer is acknowledged, so a crash re-reads rather than loses.
This example keeps what it has paid in memory. A real billing service stores the payment and its answer
in its own database, in one transaction keyed by `request_id`, so a restart never pays twice.

The answer's key is `request_id` (the service does not read it; it keeps one request's answers in order),
its `subject` the case id (also not read). Press Ctrl-C to stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from cloudevents.core.bindings import kafka
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
REQUESTS_TOPIC = "recovery.compensation.requests.v1"
RESULTS_TOPIC = "recovery.compensation.results.v1"
SOURCE = "/examples/billing"
REQUESTED = "recovery.compensation.requested"
REQUEST_FIELDS = {"request_id", "case_id", "kind", "amount", "currency"}
_ANSWER_IDS = uuid.UUID("0f5d8a9e-2c41-4b7a-9d3e-6a1b2c3d4e5f")


@dataclass(frozen=True)
class Answer:
    """What billing decided for one request, and the record that carries it."""

    request_id: str
    settled: bool
    detail: str  # the payment reference, or why it failed
    record: kafka.KafkaMessage


def decide(request: dict[str, Any], fail_above: Decimal) -> tuple[bool, str]:
    """The demo rule: pay anything up to fail_above, refuse anything above it."""
    amount = Decimal(request["amount"])
    if amount > fail_above:
        return False, f"amount {amount} {request['currency']} is above the demo limit of {fail_above}"
    return True, "PAY-" + uuid.uuid5(_ANSWER_IDS, request["request_id"]).hex[:10].upper()


def answer_record(
    request: dict[str, Any], settled: bool, detail: str, mode: str = "binary", source: str = SOURCE
) -> kafka.KafkaMessage:
    """The settled or failed CloudEvent as a Kafka record; its id is stable per request."""
    outcome = "settled" if settled else "failed"
    event = CloudEvent(
        attributes={
            "id": str(uuid.uuid5(_ANSWER_IDS, f"{request['request_id']}/{outcome}")),
            "source": source,
            "type": f"recovery.compensation.{outcome}",
            "subject": request["case_id"],
            "time": datetime.now(UTC),
            "datacontenttype": "application/json",
        },
        data={"request_id": request["request_id"], "reference" if settled else "reason": detail},
    )
    encode = kafka.to_structured_event if mode == "structured" else kafka.to_binary_event
    return encode(event, key_mapper=lambda _: request["request_id"])


def parse(record: ConsumerRecord[bytes, bytes]) -> CloudEvent | None:
    """A consumed record as a CloudEvent, whichever content mode it came in; None if it is not one."""
    headers = {name: value for name, value in record.headers if value is not None}
    message = kafka.KafkaMessage(headers=headers, key=record.key, value=record.value or b"")
    try:
        event = kafka.from_kafka_event(message)
    except (ValueError, CloudEventValidationError) as e:  # a real service would dead-letter it
        print(f"skipping offset {record.offset}: not a CloudEvent ({type(e).__name__})")
        return None
    return event if isinstance(event, CloudEvent) else None


class Billing:
    """Pays each request once and remembers its answer (in memory here; in a database for real)."""

    def __init__(self, fail_above: Decimal, mode: str, source: str) -> None:
        self.fail_above, self.mode, self.source = fail_above, mode, source
        self.answers: dict[str, Answer] = {}
        self.seen: set[tuple[str, str]] = set()

    def handle(self, event: CloudEvent | None) -> Answer | None:
        """The answer to send for one request event, or None for a redelivery or another type."""
        if (
            event is None
            or event.get_type() != REQUESTED
            or (event.get_source(), event.get_id()) in self.seen
        ):
            return None
        self.seen.add((event.get_source(), event.get_id()))
        request = event.get_data()
        if not isinstance(request, dict) or not request.keys() >= REQUEST_FIELDS:
            print(f"skipping {event.get_id()}: not a compensation request")
            return None
        if request["request_id"] in self.answers:
            print(f"already answered {request['request_id']}: sending the same answer again")
            return self.answers[request["request_id"]]
        settled, detail = decide(request, self.fail_above)
        what = "paid" if settled else "refused"
        print(
            f"{what} {request['amount']} {request['currency']} {request['kind']} for case {request['case_id']}: {detail}"
        )
        record = answer_record(request, settled, detail, self.mode, self.source)
        answer = Answer(request["request_id"], settled, detail, record)
        self.answers[answer.request_id] = answer
        return answer


async def run_billing(
    bootstrap: str,
    *,
    requests_topic: str = REQUESTS_TOPIC,
    results_topic: str = RESULTS_TOPIC,
    group_id: str = "billing-example",
    fail_above: Decimal = Decimal("500"),
    mode: Literal["binary", "structured"] = "binary",
    source: str = SOURCE,
    stop: asyncio.Event | None = None,
) -> dict[str, Answer]:
    """Consume requests and answer them until `stop` is set (forever without one); returns the answers."""
    billing = Billing(fail_above, mode, source)
    consumer = AIOKafkaConsumer(
        requests_topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while stop is None or not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    answer = billing.handle(parse(record))
                    if answer is not None:
                        r = answer.record
                        key = r.key.encode() if isinstance(r.key, str) else r.key
                        await producer.send_and_wait(
                            results_topic, r.value, key=key, headers=list(r.headers.items())
                        )
                await consumer.commit({partition: records[-1].offset + 1})  # only after the answers are acked
    finally:
        await consumer.stop()
        await producer.stop()
    return billing.answers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    parser.add_argument("--fail-above", type=Decimal, default=Decimal("500"), help="the demo rule's limit")
    parser.add_argument(
        "--mode", choices=("binary", "structured"), default="binary", help="answers' content mode"
    )
    parser.add_argument(
        "--group", default="billing-example", help="the consumer group (default: %(default)s)"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_billing(args.bootstrap, group_id=args.group, fail_above=args.fail_above, mode=args.mode)
        )


if __name__ == "__main__":
    main()
