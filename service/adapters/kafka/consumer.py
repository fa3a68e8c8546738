"""The signal subscriber: one batch in, one transaction, then the offsets.

FastStream's batch `ack()` commits every position the consumer holds, so the subscriber runs with
AckPolicy.MANUAL: each partition's next offset is stored in PostgreSQL inside the transaction that
applied the batch, the consumer seeks there on assignment, and explicit per-partition offsets are
committed to Kafka afterwards so lag stays visible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal
from service.adapters.postgres.errors import TRANSIENT
from service.app.intake import IntakeResult
from service.app.ports import IntakeStore, PartitionKey
from service.domain.errors import ConcurrencyConflict
from service.domain.intake import Outcome
from service.domain.signals import Signal, SignalKind
from service.observability import (
    ASSIGNED_PARTITIONS,
    BATCH_CONFLICTS,
    BATCH_SECONDS,
    BATCH_SIZE,
    CONSUMER_LAG,
    DB_RETRIES,
    SIGNALS,
)

log = structlog.get_logger()
_RETRYABLE: tuple[type[BaseException], ...] = (*TRANSIENT, ConcurrencyConflict)
T = TypeVar("T")

ApplyBatch = Callable[[list[Signal], dict[PartitionKey, int]], Awaitable[IntakeResult]]


class SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the offsets stored with the effects, not from Kafka's commits."""

    def __init__(self, store: IntakeStore, group: str) -> None:
        self.store = store
        self.group = group
        self.consumer: Callable[[], AIOKafkaConsumer | None] = lambda: None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        ASSIGNED_PARTITIONS.set(0)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.consumer()
        if consumer is None:
            return
        ASSIGNED_PARTITIONS.set(len(consumer.assignment()))
        if not assigned:
            return
        keys = [(tp.topic, tp.partition) for tp in assigned]
        try:
            stored = await _with_retry(lambda: self.store.next_offsets(self.group, keys), attempts=5)
        except (
            TRANSIENT
        ) as e:  # Kafka's committed offsets lag ours; the (source, id) dedup absorbs the re-read
            log.error("stored_offsets_unavailable", error=type(e).__name__)
            return
        for (topic, partition), offset in stored.items():
            consumer.seek(TopicPartition(topic, partition), offset)
        log.info("partitions_assigned", partitions=len(keys), seeked=len(stored))


class SignalConsumer:
    def __init__(
        self,
        broker: KafkaBroker,
        producer: AIOKafkaProducer,
        topics: dict[str, SignalKind],
        dlq_topic: str,
        group: str,
        apply: ApplyBatch,
        store: IntakeStore,
        max_records: int,
        batch_timeout_ms: int,
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.dlq_topic = dlq_topic
        self.apply = apply
        self.listener = SeekToStoredOffsets(store, group)
        self.subscriber = broker.subscriber(
            *topics,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=batch_timeout_ms,
            group_id=group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            listener=self.listener,
            decoder=_undecoded,
        )
        self.listener.consumer = lambda: self.subscriber.consumer
        self.subscriber(self.on_signals)

    async def on_signals(self, message: KafkaMessage) -> None:
        records = message.raw_message
        await self.handle(list(records) if isinstance(records, tuple | list) else [records])

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        signals, rejected = self._decode(records, received_at)
        await self._dead_letter(rejected)
        offsets = _next_offsets(records)
        try:
            result = await _with_retry(lambda: self.apply(signals, offsets))
        except BaseException:
            self._rewind(records)
            raise
        await self._commit(offsets)
        self._observe(records, result, started)

    def _decode(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], received_at: datetime
    ) -> tuple[list[Signal], list[tuple[ConsumerRecord[bytes, bytes], str]]]:
        signals, rejected = [], []
        for r in records:
            try:
                signals.append(decode_signal(r.value, list(r.headers), received_at, self.topics[r.topic]))
            except InvalidMessage as e:
                rejected.append((r, e.reason))
        return signals, rejected

    async def _dead_letter(self, rejected: list[tuple[ConsumerRecord[bytes, bytes], str]]) -> None:
        """Unchanged key, value and headers, plus where it came from and why it was refused."""
        sent = []
        for r, reason in rejected:
            headers = [
                *r.headers,
                ("dlq_reason", reason.encode()),
                ("dlq_topic", r.topic.encode()),
                ("dlq_partition", str(r.partition).encode()),
                ("dlq_offset", str(r.offset).encode()),
            ]
            sent.append(await self.producer.send(self.dlq_topic, r.value, key=r.key, headers=headers))
            SIGNALS.labels(self.topics[r.topic].value, Outcome.DEAD_LETTERED.value).inc()
            log.warning(
                "signal_dead_lettered", topic=r.topic, partition=r.partition, offset=r.offset, reason=reason
            )
        await asyncio.gather(*sent)

    async def _commit(self, offsets: dict[PartitionKey, int]) -> None:
        consumer = self.subscriber.consumer
        if consumer is None:
            return
        try:
            await consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except KafkaError as e:  # the offsets are safe in PostgreSQL; Kafka's copy is for lag only
            log.warning("kafka_commit_failed", error=type(e).__name__)

    def _rewind(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Never move past records that were not applied: read them again."""
        consumer = self.subscriber.consumer
        if consumer is None:
            return
        first: dict[PartitionKey, int] = {}
        for r in records:
            first[(r.topic, r.partition)] = min(r.offset, first.get((r.topic, r.partition), r.offset))
        for (topic, partition), offset in first.items():
            try:
                consumer.seek(TopicPartition(topic, partition), offset)
            except Exception:  # noqa: BLE001 - partition no longer ours: its next owner re-reads it
                log.warning("rewind_skipped", topic=topic, partition=partition)

    def _observe(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], result: IntakeResult, started: float
    ) -> None:
        for a in result.applied:
            SIGNALS.labels(a.signal.kind.value, a.outcome.value).inc()
        for s in result.duplicates:
            SIGNALS.labels(s.kind.value, Outcome.DUPLICATE.value).inc()
        BATCH_SIZE.observe(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        BATCH_CONFLICTS.inc(result.conflicts)
        self._observe_lag(records)
        log.info(
            "batch_applied",
            records=len(records),
            applied=len(result.applied),
            duplicates=len(result.duplicates),
            events=result.events,
            seconds=round(time.perf_counter() - started, 4),
        )

    def _observe_lag(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        consumer = self.subscriber.consumer
        if consumer is None:
            return
        last: dict[PartitionKey, int] = {}
        for r in records:
            last[(r.topic, r.partition)] = max(r.offset, last.get((r.topic, r.partition), -1))
        for (topic, partition), offset in last.items():
            highwater = consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:
                CONSUMER_LAG.labels(topic, str(partition)).set(max(highwater - offset - 1, 0))


async def _undecoded(message: Any) -> None:
    """Bodies are decoded by the CloudEvents codec, record by record, so a bad one cannot stop the batch."""
    return None


def _next_offsets(records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[PartitionKey, int]:
    offsets: dict[PartitionKey, int] = {}
    for r in records:
        offsets[(r.topic, r.partition)] = max(r.offset + 1, offsets.get((r.topic, r.partition), 0))
    return offsets


async def _with_retry(work: Callable[[], Awaitable[T]], attempts: int | None = None) -> T:
    """Wait out an unreachable database or a run of lost races, with backoff; never skip the work."""
    delay, tried = 0.2, 0
    while True:
        try:
            return await work()
        except _RETRYABLE as e:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            DB_RETRIES.inc()
            log.warning("batch_retry", error=type(e).__name__, delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
