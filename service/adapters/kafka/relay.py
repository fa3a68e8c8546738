"""The outgoing relay: publishes the event log to Kafka in order, then records how far it got.

One instance publishes at a time (an advisory-lock lease, taken over when its holder's session dies).
A crash between publishing and recording the position re-publishes the same events with the same ids;
it never skips one.

One bad event holds back only its own case. An event that cannot be mapped to its records (its stored data
fails the outgoing schema), or whose record the broker refuses (too large, or corrupt, a bad timestamp, an
invalid record while the broker still takes another record: MAYBE_RECORD_REFUSED), is parked
(table parked_events) with the error's type and our own short message as its reason; every later event of
that case is parked behind it, so the case's order on Kafka holds, while every other case's events go on
and the position moves past the batch (the parked rows are written in the same transaction as the move).

Releasing is done by the relay alone, so only the lease holder ever publishes. An operator's
`recovery parked retry` marks a case's parked events 'retry' and `recovery parked skip` marks one 'skipped';
on each turn, before its next batch, the relay takes every case that is ready (released, or whose first
parked event waited behind one that was skipped or published), locks its parked rows and publishes them in
position order. If one still fails it is parked again with its new reason and the rest of the case behind
it. A case's events read in a batch while it still has parked ones are parked behind them, never published
ahead of them.

Faults of a dependency (the database or the broker unreachable, a frozen broker's timeouts) are waited out
by the one retry policy (`service.adapters.retry`); any other error not attributable to one event ends the
loop, and the process reports itself unhealthy.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnsupportedForMessageFormatError,
)
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from service.adapters.kafka.client import MAX_RECORD_BYTES
from service.adapters.kafka.outgoing import OutgoingMessage, OutgoingTopics, UnpublishableEvent, to_messages
from service.adapters.kafka.spans import publish_span
from service.adapters.postgres.event_feed import PostgresEventFeed, RelayLease
from service.adapters.postgres.parking import RELAY, OpenStream, Parked
from service.adapters.retry import keep_running
from service.app.ports import LoggedEvent
from service.observability import (
    COMPENSATIONS_REQUESTED,
    EVENTS_PARKED,
    EVENTS_PUBLISHED,
    PARKED_EVENTS,
    RELAY_LAG,
    RELAY_LEADER,
)

log = structlog.get_logger()

RECORD_REFUSED: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
"""The broker refuses a record for good because of its size: the event's fault, parked at once."""
MAYBE_RECORD_REFUSED: tuple[type[Exception], ...] = (
    CorruptRecordException,
    InvalidTimestampError,
    UnknownError,  # aiokafka's name for INVALID_RECORD and other refusals it has no class for
    UnsupportedForMessageFormatError,
)
"""Refusals that may be the record's fault or the cluster's. The relay sends a record the broker took before
(a probe; its consumers see that id again, which the contract allows): taken, the refusal was this record's and
it is parked; refused too, the cluster is at fault and the relay waits it out (BrokerRefusesRecords)."""


class BrokerRefusesRecords(KafkaError):  # type: ignore[misc]  # aiokafka has no type hints
    """The broker refused a record and a probe record it took before: the cluster's fault, waited out."""

    retriable = True


class EventRelay:
    def __init__(
        self,
        feed: PostgresEventFeed,
        producer: AIOKafkaProducer,
        topics: OutgoingTopics,
        batch: int = 1000,
        idle_seconds: float = 0.05,
        name: str = RELAY,
        max_record_bytes: int = MAX_RECORD_BYTES,
        follower_seconds: float = 1.0,
    ) -> None:
        self.feed = feed
        self.producer = producer
        self.topics = topics
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.name = name
        self.max_record_bytes = max_record_bytes
        self.follower_seconds = follower_seconds
        self._probe: list[OutgoingMessage] = []  # the last record the broker took

    async def run(self) -> None:
        """Forever: hold the lease and publish, or wait for it; a dependency's fault starts a new turn."""
        await keep_running(f"relay {self.name}", self._turn)

    async def _turn(self) -> None:
        async with self.feed.lease(self.name) as lease:
            if lease is None:
                await asyncio.sleep(self.follower_seconds)
                return
            RELAY_LEADER.set(1)
            log.info("relay_leading", relay=self.name)
            try:
                await self._lead(lease)
            finally:
                RELAY_LEADER.set(0)

    async def _lead(self, lease: RelayLease) -> None:
        position = await lease.position()
        while True:
            held = await self._release(lease)
            events = await lease.read_after(position, self.batch)
            parked: list[Parked] = []
            if events:
                parked = await self._publish_batch(events, {s: o.head for s, o in held.items()})
                position = events[-1].position
                await lease.advance(position, parked)
                EVENTS_PARKED.inc(len(parked))
            PARKED_EVENTS.set(sum(o.count for o in held.values()) + len(parked))
            RELAY_LAG.set(max(await lease.head() - position, 0))
            if len(events) < self.batch:
                await asyncio.sleep(self.idle_seconds)

    async def _publish_batch(self, events: list[LoggedEvent], heads: dict[str, int]) -> list[Parked]:
        """Publish a batch but the events of cases held back, which it returns to be parked."""
        with publish_span(events) as span:
            parked = await self._publish_ready(events, heads)
            if span.is_recording():
                span.set_attribute("recovery.events.parked", len(parked))
        return parked

    async def _publish_ready(self, events: list[LoggedEvent], heads: dict[str, int]) -> list[Parked]:
        parked: list[Parked] = []
        ready: list[tuple[LoggedEvent, list[OutgoingMessage]]] = []
        for event in events:
            head = heads.get(event.stream_id)
            if head is not None:
                parked.append(Parked.held(event, head))
                continue
            try:
                ready.append((event, self._messages(event)))
            except Exception as error:  # mapping is a function of this one event: whatever fails is its fault
                parked.append(self._fault(event, error))
                heads[event.stream_id] = event.position
        try:
            await self._send([m for _, messages in ready for m in messages])
        except (*RECORD_REFUSED, *MAYBE_RECORD_REFUSED):
            # The broker refused some record: publish again one event at a time to find whose it was.
            # Events sent before the refusal go out twice, with the same ids.
            parked += await self._publish_each(ready, heads)
        return parked

    async def _publish_each(
        self, ready: list[tuple[LoggedEvent, list[OutgoingMessage]]], heads: dict[str, int]
    ) -> list[Parked]:
        parked: list[Parked] = []
        for event, _ in ready:
            head = heads.get(event.stream_id)
            if head is not None and head < event.position:
                parked.append(Parked.held(event, head))
            elif (fault := await self._publish_one(event)) is not None:
                parked.append(fault)
                heads[event.stream_id] = min(event.position, head or event.position)
        return parked

    async def _publish_one(self, event: LoggedEvent) -> Parked | None:
        """Publish one event on its own; the parked row when it is the event's fault, None once published."""
        try:
            messages = self._messages(event)
        except Exception as error:  # mapping is a function of this one event: whatever fails is its fault
            return self._fault(event, error)
        try:
            await self._send(messages)
        except RECORD_REFUSED as error:
            return self._fault(event, error)
        except MAYBE_RECORD_REFUSED as error:
            if not await self._broker_takes_records():
                raise BrokerRefusesRecords(f"{type(error).__name__} for a record and for a probe") from error
            return self._fault(event, error)
        return None

    async def _broker_takes_records(self) -> bool:
        """Whether the broker takes the last record it took (sent again, same id): then a refusal was the record's."""
        if not self._probe:
            return False
        try:
            await self._send(self._probe)
        except (*RECORD_REFUSED, *MAYBE_RECORD_REFUSED):
            return False
        return True

    async def _release(self, lease: RelayLease) -> dict[str, OpenStream]:
        """Publish the cases that are ready, each in position order; the cases still held back."""
        held = await lease.open_streams()
        ready = [stream for stream, state in held.items() if state.ready]
        if not ready:
            return held
        for stream in ready:
            async with lease.releasing(stream) as events:
                await self._release_case(lease, events)
        return await lease.open_streams()

    async def _release_case(self, lease: RelayLease, events: Sequence[LoggedEvent]) -> None:
        if not events:  # an operator skipped them all meanwhile
            return
        for i, event in enumerate(events):
            fault = await self._publish_one(event)
            if fault is not None:
                await lease.park_again(fault, [e.position for e in events[i + 1 :]])
                await lease.published([e.position for e in events[:i]])
                return
        await lease.published([e.position for e in events])
        log.info("parked_events_released", relay=self.name, case_id=events[0].stream_id, events=len(events))

    def _messages(self, event: LoggedEvent) -> list[OutgoingMessage]:
        messages = to_messages(event, self.topics, free_text=self.feed.publishes_free_text)
        for m in messages:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(m.key, m.value, m.headers)
            if size > self.max_record_bytes:
                raise MessageSizeTooLargeError(f"a record of {size} bytes, over {self.max_record_bytes}")
        return messages

    def _fault(self, event: LoggedEvent, error: BaseException) -> Parked:
        reason = fault_reason(error)
        log.error(
            "event_parked",
            relay=self.name,
            position=event.position,
            case_id=event.stream_id,
            type=event.type,
            reason=reason,
        )
        return Parked.fault(event, reason)

    async def _send(self, messages: list[OutgoingMessage]) -> None:
        """Send records per partition, in order, and wait for every acknowledgement."""
        per_topic = Counter(m.topic for m in messages)
        partitions = {topic: len(await self.producer.partitions_for(topic)) for topic in per_topic}
        by_partition: dict[tuple[str, int], list[OutgoingMessage]] = {}
        for m in messages:
            by_partition.setdefault((m.topic, _partition(m.key, partitions[m.topic])), []).append(m)
        sent = await asyncio.gather(
            *(self._send_partition(t, p, ms) for (t, p), ms in by_partition.items()), return_exceptions=True
        )
        acks = [ack for acks in sent if isinstance(acks, list) for ack in acks]
        outcomes = await asyncio.gather(*acks, return_exceptions=True)
        _raise_first([s for s in sent if isinstance(s, BaseException)] + list(outcomes))
        self._probe = messages[-1:]
        for topic, count in per_topic.items():
            EVENTS_PUBLISHED.labels(topic).inc(count)
        for m in messages:
            if m.topic == self.topics.compensation:
                data = json.loads(m.value)
                COMPENSATIONS_REQUESTED.labels(data["kind"], data["currency"]).inc()

    async def _send_partition(
        self, topic: str, partition: int, messages: list[OutgoingMessage]
    ) -> list[asyncio.Future[Any]]:
        """One partition's records, in order, as few record batches as fit: the acknowledgements to await."""
        acks = []
        batch = self.producer.create_batch()
        for m in messages:
            if batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                acks.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = self.producer.create_batch()  # takes any first record: sizes were checked in mapping
                batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
        acks.append(await self.producer.send_batch(batch, topic, partition=partition))
        return acks


def fault_reason(error: BaseException) -> str:
    """The error's type and, for messages of our own or the Kafka client's, its text; never event data."""
    if isinstance(error, (UnpublishableEvent, *RECORD_REFUSED, *MAYBE_RECORD_REFUSED)):
        return f"{type(error).__name__}: {str(error)[:300]}"
    return type(error).__name__


def _raise_first(outcomes: Sequence[object]) -> None:
    """Raise one of the errors, preferring one that is not the event's fault: that one must not park it."""
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise min(errors, key=lambda e: isinstance(e, RECORD_REFUSED))


@lru_cache(maxsize=100_000)
def _partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (murmur2), so a case stays on one partition."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
