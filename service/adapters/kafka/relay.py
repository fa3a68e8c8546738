"""The outgoing relay: publishes the event log to Kafka in order, then records how far it got.

One instance publishes at a time (an advisory-lock lease, taken over when its holder's session dies).
A crash between publishing and recording the position re-publishes the same events with the same ids;
it never skips one.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.postgres.errors import TRANSIENT
from service.adapters.postgres.event_feed import PostgresEventFeed, RelayLease
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

    async def _publish(self, events: list) -> None:  # type: ignore[type-arg]
        messages = [m for e in events for m in to_messages(e, self.topics)]
        sent = [await self.producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in messages]
        await asyncio.gather(*sent)
        for m in messages:
            EVENTS_PUBLISHED.labels(m.topic).inc()
            if m.topic == self.topics.compensation:
                data = json.loads(m.value)
                COMPENSATIONS_REQUESTED.labels(data["kind"], data["currency"]).inc()
