"""The signal subscriber: one batch in, one transaction, then the offsets.

FastStream's batch `ack()` commits every position the consumer holds, so the subscriber runs with
AckPolicy.MANUAL: each partition's next offset is stored in PostgreSQL inside the transaction that
applied the batch, the consumer seeks there on assignment, and explicit per-partition offsets are
committed to Kafka afterwards so lag stays visible.

Two stages overlap on the hot path: the subscriber decodes batch N+1 while the writer's transaction
for batch N runs in PostgreSQL. The queue between them is short and is drained before partitions
are given up in a rebalance and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaMessage as FastStreamKafkaMessage

from service.adapters.kafka.client import OffsetsAreOurs
from service.adapters.kafka.cloudevents import InvalidMessage, decode_signal
from service.adapters.kafka.spans import apply_span, batch_span, describe_applied
from service.adapters.retry import retrying
from service.app.intake import IntakeResult
from service.app.ports import IntakeStore, PartitionKey
from service.domain.incidents import BY_HAND
from service.domain.intake import Applied, Outcome
from service.domain.signals import Signal, SignalKind
from service.observability import (
    ASSIGNED_PARTITIONS,
    BATCH_CONFLICTS,
    BATCH_SECONDS,
    BATCH_SIZE,
    CONSUMER_LAG,
    DB_RETRIES,
    DEAD_LETTER_REFERENCES,
    INCIDENTS_OPENED,
    ISOLATED_RECORDS,
    SIGNALS,
)

log = structlog.get_logger()
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
ApplyBatch = Callable[[list[Signal], dict[PartitionKey, int]], Awaitable[IntakeResult]]
_REFERENCE_KEY_LIMIT = 1024  # a key longer than this is left out of a dead-letter reference


@dataclass(frozen=True)
class _Batch:
    records: Sequence[Record]
    decoded: list[tuple[Record, Signal]]
    rejected: list[tuple[Record, str]]
    started: float


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
        max_text_length: int,
    ) -> None:
        self.producer = producer
        self.max_text_length = max_text_length
        self.topics = topics
        self.dlq_topic = dlq_topic
        self.apply = apply
        self.group = group
        self.failed: BaseException | None = None
        self.joined = asyncio.Event()
        """Set once the consumer has joined its group and taken its first assignment (possibly empty)."""
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=2)
        self._writer: asyncio.Task[None] | None = None
        self.subscriber = broker.subscriber(
            *topics,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=batch_timeout_ms,
            group_id=group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            listener=_Rebalance(self, store, group),
            parser=_records_as_they_are,
            decoder=_undecoded,
        )
        self.subscriber(self.on_signals)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="signal-writer")

    async def finish_decoded(self) -> None:
        """Wait until every decoded batch is written (at once when the writer has failed: nothing more will be)."""
        if self.failed is None:
            await self._queue.join()

    async def drain(self) -> None:
        """Finish every decoded batch, then stop the writer."""
        await self.finish_decoded()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        return self.subscriber.consumer

    async def on_signals(self, message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Sequence[Record] = raw if isinstance(raw, tuple | list) else [raw]
        started = time.perf_counter()
        decoded, rejected = self._decode(records, datetime.now(UTC))
        await self._queue.put(_Batch(records, decoded, rejected, started))

    async def _write_forever(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._write(batch)
            except Exception as e:
                # A batch that fails for a reason other than the database or a lost race is a bug: stop
                # taking work (nothing past it is applied or committed) and report unhealthy so the
                # process is restarted and resumes from the offsets stored with the last applied batch.
                self.failed = e
                log.exception("batch_failed", records=len(batch.records))
                raise
            finally:
                self._queue.task_done()

    async def _write(self, batch: _Batch) -> None:
        signals = [s for _, s in batch.decoded]
        with batch_span(len(batch.records), signals, self.group) as span:
            await self._dead_letter(batch.rejected)
            offsets = _next_offsets(batch.records)
            isolated = 0
            with apply_span() as applying:
                try:
                    result = await self._apply(signals, offsets)
                # not transient (those are waited out): some record in the batch is poison
                except Exception as e:
                    log.warning("batch_isolating", records=len(batch.decoded), error=type(e).__name__)
                    result, isolated = await self._apply_isolating(batch.decoded, offsets)
                describe_applied(applying, result, len(batch.rejected) + isolated, _CASE_CHANGES)
            await self._commit(offsets)
            self._observe(batch, result, isolated)
            describe_applied(span, result, len(batch.rejected) + isolated, {})

    async def _dead_letter(self, rejected: list[tuple[Record, str]]) -> None:
        for r, _ in rejected:
            SIGNALS.labels(self.topics[r.topic].value, Outcome.DEAD_LETTERED.value).inc()
        await dead_letter_all(self.producer, self.dlq_topic, rejected)

    async def _apply(self, signals: list[Signal], offsets: dict[PartitionKey, int]) -> IntakeResult:
        return await retrying(
            lambda: self.apply(signals, offsets), "signal batch", on_retry=lambda _: DB_RETRIES.inc()
        )

    async def _apply_isolating(
        self, decoded: list[tuple[Record, Signal]], offsets: dict[PartitionKey, int]
    ) -> tuple[IntakeResult, int]:
        """Halve the batch until each failing record stands alone: those go to the dead-letter topic, every
        other record is applied (in order, each part in its own transaction), and only then do the offsets
        move. A crash part-way re-reads the batch; the (source, id) dedup makes the re-run change nothing."""
        results: list[IntakeResult] = []
        poison: list[tuple[Record, str]] = []
        await self._isolate(decoded, results, poison)
        await self._dead_letter(poison)
        results.append(await self._apply([], offsets))
        return IntakeResult.combined(results), len(poison)

    async def _isolate(
        self,
        decoded: list[tuple[Record, Signal]],
        results: list[IntakeResult],
        poison: list[tuple[Record, str]],
    ) -> None:
        if not decoded:
            return
        try:
            results.append(await self._apply([s for _, s in decoded], {}))
            return
        except Exception as e:
            if len(decoded) > 1:
                middle = len(decoded) // 2
                await self._isolate(decoded[:middle], results, poison)
                await self._isolate(decoded[middle:], results, poison)
                return
            record = decoded[0][0]
            poison.append((record, f"processing_failed: {type(e).__name__}"))
            ISOLATED_RECORDS.labels("apply").inc()
            log.error(
                "record_isolated",
                stage="apply",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=type(e).__name__,
            )

    def _decode(
        self, records: Sequence[Record], received_at: datetime
    ) -> tuple[list[tuple[Record, Signal]], list[tuple[Record, str]]]:
        decoded, rejected = [], []
        for r in records:
            try:
                signal = decode_signal(
                    r.value, list(r.headers), received_at, self.topics[r.topic], self.max_text_length
                )
                decoded.append((r, signal))
            except InvalidMessage as e:
                rejected.append((r, e.reason))
            except Exception as e:  # a bug the record triggers: isolate it, never stop the batch
                rejected.append((r, f"decode_failed: {type(e).__name__}"))
                ISOLATED_RECORDS.labels("decode").inc()
                log.error(
                    "record_isolated", stage="decode", topic=r.topic, offset=r.offset, error=type(e).__name__
                )
        return decoded, rejected

    async def _commit(self, offsets: dict[PartitionKey, int]) -> None:
        if self.consumer is None:
            return
        try:
            await self.consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except KafkaError as e:  # the offsets are safe in PostgreSQL; Kafka's copy is for lag only
            log.warning("kafka_commit_failed", error=type(e).__name__)

    def _observe(self, batch: _Batch, result: IntakeResult, isolated: int) -> None:
        outcomes = Counter((a.signal.kind.value, a.outcome.value) for a in result.applied)
        outcomes.update((s.kind.value, Outcome.DUPLICATE.value) for s in result.duplicates)
        for (kind, outcome), count in outcomes.items():
            SIGNALS.labels(kind, outcome).inc(count)
        seconds = time.perf_counter() - batch.started
        BATCH_SIZE.observe(len(batch.records))
        BATCH_SECONDS.observe(seconds)
        BATCH_CONFLICTS.inc(result.conflicts)
        for incident in result.incidents:
            rule = incident.detection.rule if incident.detection else BY_HAND
            INCIDENTS_OPENED.labels(rule, incident.type).inc()
            log.warning(  # an outage: the scope's values name a service and a region, never a customer
                "incident_opened",
                incident_id=incident.incident_id,
                type=incident.type,
                rule=rule,
                scope=incident.scope,
                customers=incident.detection.customers if incident.detection else None,
            )
        self._observe_lag(batch.records)
        log_case_changes(result.applied)
        log.info(
            "batch_applied",
            records=len(batch.records),
            applied=len(result.applied),
            duplicates=len(result.duplicates),
            dead_lettered=len(batch.rejected) + isolated,
            events=result.events,
            seconds=round(seconds, 4),
        )

    def _observe_lag(self, records: Sequence[Record]) -> None:
        if self.consumer is None:
            return
        last: dict[PartitionKey, int] = {}
        for r in records:
            last[(r.topic, r.partition)] = max(r.offset, last.get((r.topic, r.partition), -1))
        for (topic, partition), offset in last.items():
            highwater = self.consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:
                CONSUMER_LAG.labels(topic, str(partition)).set(max(highwater - offset - 1, 0))


_CASE_CHANGES = {
    Outcome.OPENED: "case_opened",
    Outcome.ESCALATED: "case_escalated",
    Outcome.REOPENED: "case_reopened",
}


def log_case_changes(applied: Sequence[Applied]) -> None:
    """One INFO line per case a signal opened, escalated or reopened, with its ids (never free text); a signal
    that only attaches is counted in the metrics, not logged: that volume suits thousands of signals a second."""
    for a in applied:
        event = _CASE_CHANGES.get(a.outcome)
        if event is not None:
            log.info(
                event,
                case_id=a.case_id,
                customer_id=a.signal.customer_id,
                severity=a.case_severity,
                signal_source=a.signal.source,
                signal_id=a.signal.id,
            )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finish decoded work before partitions go; continue from the offsets stored with the effects."""

    def __init__(self, signals: SignalConsumer, store: IntakeStore, group: str) -> None:
        self.signals = signals
        self.store = store
        self.group = group

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.signals.finish_decoded()
        ASSIGNED_PARTITIONS.set(0)
        for tp in revoked:  # another instance reports these now: a stale value here would mislead
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        try:
            await self._continue_from_stored_offsets(assigned)
        finally:
            self.signals.joined.set()

    async def _continue_from_stored_offsets(self, assigned: Any) -> None:
        consumer = self.signals.consumer
        if consumer is None:
            return
        ASSIGNED_PARTITIONS.set(len(consumer.assignment()))
        keys = [(tp.topic, tp.partition) for tp in assigned]
        if not keys:
            return
        try:
            stored = await retrying(
                lambda: self.store.next_offsets(self.group, keys), "stored offsets", attempts=5
            )
        except Exception as e:  # Kafka's committed offsets lag ours; the (source, id) dedup absorbs a re-read
            log.error("stored_offsets_unavailable", error=type(e).__name__)
            return
        for (topic, partition), offset in stored.items():
            consumer.seek(TopicPartition(topic, partition), offset)
        log.info("partitions_assigned", partitions=len(keys), seeked=len(stored))


async def _records_as_they_are(
    records: tuple[Record, ...], _faststream_parser: Any
) -> FastStreamKafkaMessage:
    """FastStream's batch parser decodes every header as UTF-8, so one odd header fails the whole batch
    before any handler runs; here the records pass as they are and the codec judges each one."""
    first, last = records[0], records[-1]
    return FastStreamKafkaMessage(
        raw_message=records,
        body=[],
        message_id=f"{first.topic}-{first.partition}-{first.offset}-{last.offset}",
        consumer=OffsetsAreOurs(),  # never acked through FastStream: offsets are ours (see the module doc)
    )


def _dead_letter_headers(record: Record, reason: str) -> list[tuple[str, bytes]]:
    """Where it came from and why: (dlq_topic, dlq_partition, dlq_offset) is the dead letter's identity."""
    return [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", record.topic.encode()),
        ("dlq_partition", str(record.partition).encode()),
        ("dlq_offset", str(record.offset).encode()),
    ]


async def dead_letter(producer: AIOKafkaProducer, topic: str, record: Record, reason: str) -> None:
    """Send one record to the dead-letter topic unchanged (plus the dlq_* headers) and wait for the broker.

    A record too large to send with the headers added goes as a reference instead: no value, no original
    headers, only where it is (topic, partition, offset), why, and its size. A broker that is away is waited
    out; a dead letter may be sent twice after a crash, so readers dedupe on its identity.
    """
    log.warning(
        "dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, reason=reason
    )

    async def send() -> None:
        headers = [*record.headers, *_dead_letter_headers(record, reason)]
        try:
            await (await producer.send(topic, record.value, key=record.key, headers=headers))
        except MessageSizeTooLargeError:
            await _dead_letter_reference(producer, topic, record, reason)

    await retrying(send, "dead letter")


async def _dead_letter_reference(producer: AIOKafkaProducer, topic: str, record: Record, reason: str) -> None:
    size = len(record.value or b"") + sum(len(k) + len(v or b"") for k, v in record.headers)
    key = record.key if record.key is not None and len(record.key) <= _REFERENCE_KEY_LIMIT else None
    headers = [
        *_dead_letter_headers(record, reason),
        ("dlq_reference", b"true"),
        ("dlq_original_bytes", str(size).encode()),
    ]
    DEAD_LETTER_REFERENCES.inc()
    log.error("dead_lettered_as_reference", topic=record.topic, offset=record.offset, bytes=size)
    await (await producer.send(topic, None, key=key, headers=headers))


async def dead_letter_all(
    producer: AIOKafkaProducer, topic: str, rejected: Sequence[tuple[Record, str]]
) -> None:
    """Dead-letter every rejected record, concurrently, and wait until the broker has them all."""
    await asyncio.gather(*(dead_letter(producer, topic, r, why) for r, why in rejected))


async def _undecoded(message: Any) -> None:
    """Bodies are decoded by the CloudEvents codec, record by record, so a bad one cannot stop the batch."""
    return None


def _next_offsets(records: Sequence[Record]) -> dict[PartitionKey, int]:
    offsets: dict[PartitionKey, int] = {}
    for r in records:
        offsets[(r.topic, r.partition)] = max(r.offset + 1, offsets.get((r.topic, r.partition), 0))
    return offsets
