"""Billing's answers on recovery.compensation.results.v1: decoded, then landed on the case that asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaMessage as FastStreamKafkaMessage
from pydantic import Field

from service.adapters.kafka.client import OffsetsAreOurs
from service.adapters.kafka.cloudevents import InvalidMessage, decode_event, validate_data
from service.adapters.kafka.consumer import dead_letter
from service.adapters.kafka.wire import MAX_SHORT_TEXT_LENGTH, Identifier, ShortText, WireModel
from service.adapters.retry import retrying
from service.app.commands import CaseNotFound
from service.domain.errors import DomainError
from service.observability import ISOLATED_RECORDS

log = structlog.get_logger()

SETTLED: Final = "recovery.compensation.settled"
FAILED: Final = "recovery.compensation.failed"
RESULT_TYPES: Final = (SETTLED, FAILED)


class CompensationResultData(WireModel):
    """Data of billing's recovery.compensation.settled / .failed CloudEvents."""

    request_id: Identifier = Field(
        description="The request_id of the recovery.compensation.requested answered."
    )
    reference: ShortText | None = Field(
        default=None,
        description=f"Billing's reference for a settled payment (at most {MAX_SHORT_TEXT_LENGTH:,} characters).",
    )
    reason: ShortText | None = Field(
        default=None, description=f"Why it failed (at most {MAX_SHORT_TEXT_LENGTH:,} characters)."
    )


@dataclass(frozen=True, slots=True)
class CompensationResult:
    source: str
    id: str
    request_id: str
    settled: bool
    detail: str
    traceparent: str | None = None  # billing's trace context: the case event it causes carries it on


def decode_result(
    value: bytes | None, headers: list[tuple[str, bytes]], sources: frozenset[str] | None = None
) -> CompensationResult:
    """A settled or failed answer from a trusted billing source (None: any); anything else raises InvalidMessage
    (and goes to the dead-letter topic): a forged `failed` would free an agent's limit again."""
    attributes, data = decode_event(value, headers)
    if attributes.type not in RESULT_TYPES:
        raise InvalidMessage(f"type {attributes.type[:80]!r} is not accepted on this topic")
    if sources is not None and attributes.source not in sources:
        raise InvalidMessage(
            f"source {attributes.source[:80]!r} is not a billing source this service trusts (RECOVERY_BILLING_SOURCES)"
        )
    result = validate_data(CompensationResultData, data)
    settled = attributes.type == SETTLED
    detail = (result.reference if settled else result.reason) or ""
    return CompensationResult(
        attributes.source, attributes.id, result.request_id, settled, detail, attributes.traceparent
    )


class ResultsConsumer:
    """One record at a time (billing's answers are few); effects are idempotent, so the offset follows them."""

    def __init__(
        self,
        broker: KafkaBroker,
        producer: AIOKafkaProducer,
        topic: str,
        group: str,
        dlq_topic: str,
        land: Callable[[CompensationResult], Awaitable[None]],
        sources: frozenset[str] | None = None,
    ) -> None:
        self.producer, self.dlq_topic, self.land, self.sources = producer, dlq_topic, land, sources
        self.subscriber = broker.subscriber(
            topic,
            group_id=group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            parser=_record_as_it_is,
            decoder=_undecoded,
        )
        self.subscriber(self.on_result)

    async def on_result(self, message: KafkaMessage) -> None:
        record: Any = message.raw_message
        try:
            result = decode_result(record.value, list(record.headers), self.sources)
            await retrying(lambda: self.land(result), "billing result")
        except (InvalidMessage, DomainError, CaseNotFound) as e:
            reason = e.reason if isinstance(e, InvalidMessage) else str(e)
            await dead_letter(self.producer, self.dlq_topic, record, reason)
        except Exception as e:  # a bug this answer triggers: isolate it (transient faults were waited out)
            ISOLATED_RECORDS.labels("billing_result").inc()
            log.error("record_isolated", stage="billing_result", offset=record.offset, error=type(e).__name__)
            await dead_letter(self.producer, self.dlq_topic, record, f"processing_failed: {type(e).__name__}")
        consumer = self.subscriber.consumer
        if consumer is None:
            return
        try:
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
        except KafkaError as e:  # the effect is idempotent: a re-read after a rebalance changes nothing
            log.warning("kafka_commit_failed", error=type(e).__name__)


async def _record_as_it_is(record: Any, _faststream_parser: Any) -> FastStreamKafkaMessage:
    return FastStreamKafkaMessage(
        raw_message=record,
        body=b"",
        message_id=f"{record.topic}-{record.partition}-{record.offset}",
        consumer=OffsetsAreOurs(),
    )


async def _undecoded(message: Any) -> None:
    return None
