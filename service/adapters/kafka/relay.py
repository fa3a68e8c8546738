"""The outgoing relay: publishes the event log to Kafka in order, then records how far it got.

One instance publishes at a time (an advisory-lock lease, taken over when its holder's session dies).
A crash between publishing and recording the position re-publishes the same events with the same ids;
it never skips one.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from functools import lru_cache
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import murmur2

from service.adapters.kafka.outgoing import OutgoingMessage, OutgoingTopics, to_messages
from service.adapters.postgres.errors import TRANSIENT
from service.adapters.postgres.event_feed import PostgresEventFeed, RelayLease
from service.app.ports import LoggedEvent
from service.observability import COMPENSATIONS_REQUESTED, EVENTS_PUBLISHED, RELAY_LAG, RELAY_LEADER

log = structlog.get_logger()
_RETRYABLE: tuple[type[BaseException], ...] = (*TRANSIENT, KafkaError)


class EventRelay:
    def __init__(
        self,
        feed: PostgresEventFeed,
        producer: AIOKafkaProducer,
        topics: OutgoingTopics,
        batch: int = 1000,
        idle_seconds: float = 0.05,
        name: str = "outgoing",
    ) -> None:
        self.feed = feed
        self.producer = producer
        self.topics = topics
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.name = name

    async def run(self) -> None:
        """Forever: hold the lease and publish, or wait for it; errors from Kafka or the database restart the turn."""
        while True:
            try:
                async with self.feed.lease(self.name) as lease:
                    if lease is not None:
                        RELAY_LEADER.set(1)
                        log.info("relay_leading", relay=self.name)
                        await self._publish_forever(lease)
            except _RETRYABLE as e:
                log.warning("relay_interrupted", relay=self.name, error=type(e).__name__)
            finally:
                RELAY_LEADER.set(0)
            await asyncio.sleep(1.0)

    async def _publish_forever(self, lease: RelayLease) -> None:
        position = await lease.position()
        while True:
            events = await lease.read_after(position, self.batch)
            if events:
                await self._publish(events)
                position = events[-1].position
                await lease.advance(position)
            RELAY_LAG.set(max(await lease.head() - position, 0))
            if len(events) < self.batch:
                await asyncio.sleep(self.idle_seconds)

    async def _publish(self, events: list[LoggedEvent]) -> None:
        messages = [m for e in events for m in to_messages(e, self.topics)]
        per_topic = Counter(m.topic for m in messages)
        partitions = {topic: len(await self.producer.partitions_for(topic)) for topic in per_topic}
        by_partition: dict[tuple[str, int], list[OutgoingMessage]] = {}
        for m in messages:
            by_partition.setdefault((m.topic, _partition(m.key, partitions[m.topic])), []).append(m)
        sent = await asyncio.gather(*(self._send(t, p, ms) for (t, p), ms in by_partition.items()))
        await asyncio.gather(*(ack for acks in sent for ack in acks))
        for topic, count in per_topic.items():
            EVENTS_PUBLISHED.labels(topic).inc(count)
        for m in messages:
            if m.topic == self.topics.compensation:
                data = json.loads(m.value)
                COMPENSATIONS_REQUESTED.labels(data["kind"], data["currency"]).inc()

    async def _send(
        self, topic: str, partition: int, messages: list[OutgoingMessage]
    ) -> list[asyncio.Future[Any]]:
        """One partition's records, in order, as few record batches as fit: the acknowledgements to await."""
        acks = []
        batch = self.producer.create_batch()
        for m in messages:
            if batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                acks.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = self.producer.create_batch()
                if batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                    raise MessageSizeTooLargeError(f"an event of {len(m.value)} bytes fits no record batch")
        acks.append(await self.producer.send_batch(batch, topic, partition=partition))
        return acks


@lru_cache(maxsize=100_000)
def _partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (murmur2), so a case stays on one partition."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
