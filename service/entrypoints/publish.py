"""`recovery publish <kind>`: publish one signal CloudEvent to its topic, as a producing system would.

The record is checked against the wire contract before it is sent (the service's own decoder judges it), so
a refusal names the field here instead of a dead letter later. Nothing is sent when anything is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from service.adapters.kafka.client import MAX_RECORD_BYTES, client_options
from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal, encode_binary, encode_structured
from service.adapters.kafka.wire import DATA_MODELS, TYPE_BY_KIND, parse_rfc3339
from service.config import Settings
from service.domain.signals import SignalKind

DEFAULT_SOURCE = "/recovery/cli"
MODES = ("binary", "structured")
FLAG_OF_ATTRIBUTE = {"id": "--id", "source": "--source", "time": "--time", "subject": "--customer"}


class PublishRefused(Exception):
    """The signal would not be a valid one: the message names the field, and nothing was sent."""


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    headers: list[tuple[str, bytes]]
    value: bytes
    event_id: str
    mode: str


def add_commands(commands: Any) -> None:
    publish = commands.add_parser(
        "publish",
        help="publish one signal (a CloudEvent) to its topic, checked against the contract first",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("kind", choices=[k.value for k in SignalKind], help="the signal's kind")
    publish.add_argument(
        "--customer", required=True, help="the customer id: data.customer_id, the subject and the record key"
    )
    publish.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a data field of the kind (schemas/signals/<kind>.data.schema.json), repeat for more; VALUE is"
        ' read as JSON when it is JSON (2, true, {"amount": "120.00", "currency": "EUR"}), else as text',
    )
    publish.add_argument("--mode", choices=MODES, default="binary", help="CloudEvents content mode")
    publish.add_argument(
        "--id", help="the CloudEvent id (default: a new UUID); (source, id) is the dedup key"
    )
    publish.add_argument(
        "--source", default=DEFAULT_SOURCE, help="the CloudEvent source (default %(default)s)"
    )
    publish.add_argument("--time", help="when it happened, RFC 3339 with an offset (default: now)")
    publish.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: RECOVERY_KAFKA_BOOTSTRAP_SERVERS)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": args.bootstrap})
    now = datetime.now(UTC)
    try:
        record = signal_record(args, settings, now)
    except PublishRefused as e:
        print(f"recovery publish: {e}; nothing was sent", file=sys.stderr)
        return 2
    try:
        partition, offset = asyncio.run(send(record, settings))
    except (KafkaError, OSError, TimeoutError) as e:
        print(
            f"recovery publish: no broker took the record at {settings.kafka_bootstrap_servers}"
            f" ({type(e).__name__}); nothing was sent",
            file=sys.stderr,
        )
        return 1
    print(
        f"published {args.kind} signal {record.event_id} for {args.customer} ({record.mode} mode)"
        f" to {record.topic} partition {partition} offset {offset}"
    )
    return 0


def signal_record(args: argparse.Namespace, settings: Settings, now: datetime) -> Record:
    """The Kafka record of the signal the flags describe, valid by the service's own decoder."""
    kind = SignalKind(args.kind)
    data = {"customer_id": args.customer, **data_fields(kind, args.field)}
    attributes = {
        "id": str(uuid.uuid4()) if args.id is None else args.id,
        "source": args.source,
        "type": TYPE_BY_KIND[kind],
        "subject": args.customer,
        "time": _time(args.time, now),
    }
    encode = encode_structured if args.mode == "structured" else encode_binary
    headers, value = encode(**attributes, data=data)
    try:
        decode_signal(value, headers, now, expected_kind=kind, max_text_length=settings.max_text_length)
    except InvalidMessage as e:
        raise PublishRefused(_with_flag(e.reason)) from e
    if len(value) > MAX_RECORD_BYTES:
        raise PublishRefused(f"the record is larger than {MAX_RECORD_BYTES} bytes")
    topic = next(t for t, k in settings.signal_topics().items() if k is kind)
    return Record(topic, args.customer.encode(), headers, value, attributes["id"], args.mode)


def data_fields(kind: SignalKind, flags: list[str]) -> dict[str, Any]:
    """NAME=VALUE flags as data fields of the kind; an unknown or repeated name is refused, naming it."""
    known = set(DATA_MODELS[kind].model_fields) - {"customer_id"}
    fields: dict[str, Any] = {}
    for flag in flags:
        name, equals, text = flag.partition("=")
        if not equals:
            raise PublishRefused(f"--field {flag!r}: write NAME=VALUE")
        if name not in known:
            raise PublishRefused(
                f"data.{name}: not a field of {kind.value} signals ({', '.join(sorted(known))})"
            )
        if name in fields:
            raise PublishRefused(f"data.{name}: given twice")
        fields[name] = _value(text)
    return fields


def _with_flag(reason: str) -> str:
    """A reason about an attribute names the flag that set it too: `--customer (ce_subject): …`."""
    where, colon, rest = reason.partition(":")
    flag = FLAG_OF_ATTRIBUTE.get(where.removeprefix("ce_"))
    return f"{flag} ({where}){colon}{rest}" if flag and colon else reason


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _time(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        return parse_rfc3339(text)
    except ValueError as e:
        raise PublishRefused(f"--time: {e}") from e


async def send(record: Record, settings: Settings) -> tuple[int, int]:
    """One record with acks=all; no idempotent producer (the embedded broker lacks it): a re-send is a
    duplicate the service drops by (source, id)."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", request_timeout_ms=15_000)
    try:
        await asyncio.wait_for(producer.start(), 30)
        sent = await producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()
    return sent.partition, sent.offset
