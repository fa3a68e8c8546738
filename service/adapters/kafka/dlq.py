"""The dead-letter topic, read and replayed: the Kafka side of `recovery dlq`.

Reading takes the topic as it stands when the read starts, partition by partition, without a consumer
group (nothing is committed). A partition's end is the high watermark the broker returns with a fetch,
never `end_offsets()`: the embedded broker (Tansu) answers `end_offsets()` with less than the end when
records were produced in batches (seen here: 1 for a partition holding 143 records), while the fetch's
high watermark was exact. Records produced after the first fetch answer are left for the next read, so a
busy topic cannot keep a read going. A partition that neither answers nor moves within `stall_seconds`
ends the read with an error instead of a hang.

Records stream through: nothing holds the topic, and a replay sends as it reads. What is kept is one
small entry per dead letter seen (its identity), to drop a second copy of the same dead letter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from service.adapters.kafka.client import client_options
from service.adapters.kafka.wire import STRUCTURED_CONTENT_TYPE
from service.config import Settings

DLQ_PREFIX = "dlq_"
Identity = tuple[str, int, int]  # the original record: (topic, partition, offset)
_MAX_STRUCTURED_BYTES = 2 * 1024 * 1024  # a structured body larger than this is not parsed for its ids


class DeadLetterReadError(Exception):
    """The dead-letter topic could not be read to its end."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, where it sits there, and what its headers say."""

    partition: int  # on the dead-letter topic
    offset: int  # on the dead-letter topic
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    def header(self, name: str) -> str | None:
        raw = next((v for k, v in self.headers if k == name), None)
        return None if raw is None else raw.decode("utf-8", "replace")

    @property
    def identity(self) -> Identity | None:
        """(dlq_topic, dlq_partition, dlq_offset): the record it was; None on a record the service never wrote."""
        topic, partition, offset = (self.header(f"{DLQ_PREFIX}{n}") for n in ("topic", "partition", "offset"))
        if topic is None or partition is None or offset is None:
            return None
        try:
            return topic, int(partition), int(offset)
        except ValueError:
            return None

    @property
    def reason(self) -> str:
        return self.header("dlq_reason") or ""

    @property
    def is_reference(self) -> bool:
        return self.header("dlq_reference") == "true"

    def original_headers(self) -> list[tuple[str, bytes | None]]:
        """The headers the record came with: every header but the dlq_* ones, in order."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_PREFIX)]

    def customer_id(self) -> str | None:
        """The customer id in the value's data (binary or structured mode), where readable; else None."""
        if self.value is None or len(self.value) > _MAX_STRUCTURED_BYTES:
            return None
        try:
            body = json.loads(self.value)
        except (ValueError, RecursionError):
            return None
        if isinstance(body, dict) and self.header("ce_id") is None and isinstance(body.get("data"), dict):
            body = body["data"]  # structured mode: the attributes and the data in the body
        found = body.get("customer_id") if isinstance(body, dict) else None
        return found if isinstance(found, str) else None

    def cloudevent(self) -> tuple[str | None, str | None, str | None]:
        """(source, id, type) from the ce_ headers or a structured body, where readable; never the data."""
        found = [self.header(f"ce_{n}") for n in ("source", "id", "type")]
        if any(found) or self.value is None or len(self.value) > _MAX_STRUCTURED_BYTES:
            return found[0], found[1], found[2]
        if (self.header("content-type") or "").split(";")[0].strip().lower() != STRUCTURED_CONTENT_TYPE:
            return None, None, None
        try:
            event = json.loads(self.value)
        except (ValueError, RecursionError):
            return None, None, None
        if not isinstance(event, dict):
            return None, None, None
        attrs = [event.get(n) for n in ("source", "id", "type")]
        return tuple(a if isinstance(a, str) else None for a in attrs)  # type: ignore[return-value]


@dataclass(frozen=True)
class DeadLetterFilter:
    """Reason substring, original topic, and a time range [since, until) on the dead letter's timestamp."""

    reason: str | None = None
    topic: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        identity = letter.identity
        return (
            (self.reason is None or self.reason.lower() in letter.reason.lower())
            and (self.topic is None or (identity is not None and identity[0] == self.topic))
            and (self.since is None or letter.timestamp >= self.since)
            and (self.until is None or letter.timestamp < self.until)
        )


class SeenIdentities:
    """Identities met so far; offsets are kept per (topic, partition), an int each."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, int], set[int]] = {}

    def add(self, identity: Identity) -> bool:
        """True when the identity is new."""
        offsets = self._offsets.setdefault(identity[:2], set())
        if identity[2] in offsets:
            return False
        offsets.add(identity[2])
        return True


class DeadLetterReader:
    """`async with DeadLetterReader(settings) as reader: async for letter in reader.letters(): ...`"""

    def __init__(self, settings: Settings, stall_seconds: float = 30.0) -> None:
        self.topic = settings.topic_dlq
        self.stall_seconds = stall_seconds
        self.total: int | None = None  # records to read, once the broker has answered for every partition
        self._consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # records removed by retention while reading: go on from the oldest
            max_poll_records=500,
        )

    async def __aenter__(self) -> DeadLetterReader:
        await self._consumer.start()
        # aiokafka (0.14) raises CancelledError from stop() when its group-less coordinator task has not run
        # once yet: one turn of the loop lets it start.
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def letters(self) -> AsyncGenerator[DeadLetter, None]:
        """Every record of the topic up to the ends, in order per partition."""
        consumer = self._consumer
        partitions = await self._partitions()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends: dict[TopicPartition, int] = {}
        progress_at = time.monotonic()
        while not await self._at_ends(partitions, ends):
            batch = await consumer.getmany(timeout_ms=500)
            if self._note_ends(partitions, ends, starts) or batch:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > self.stall_seconds:
                raise DeadLetterReadError(f"no progress reading {self.topic} in {self.stall_seconds:.0f}s")
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends.get(tp, r.offset + 1):
                        yield _letter(r)

    async def _partitions(self) -> list[TopicPartition]:
        await self._consumer.topics()  # fetches the cluster's metadata
        ids = self._consumer.partitions_for_topic(self.topic)
        if not ids:
            raise DeadLetterReadError(f"no topic {self.topic} on the broker")
        return [TopicPartition(self.topic, p) for p in sorted(ids)]

    async def _at_ends(self, partitions: list[TopicPartition], ends: dict[TopicPartition, int]) -> bool:
        """Every partition's end known and reached; a partition at its end is paused (no more fetches)."""
        reached = [tp for tp in ends if await self._consumer.position(tp) >= ends[tp]]
        self._consumer.pause(*reached)
        return len(reached) == len(partitions)

    def _note_ends(
        self, partitions: list[TopicPartition], ends: dict[TopicPartition, int], starts: dict[Any, int]
    ) -> bool:
        """Take each partition's end from the first fetch the broker answered for it."""
        noted = False
        for tp in partitions:
            if tp not in ends and self._consumer.last_poll_timestamp(tp) is not None:
                ends[tp] = self._consumer.highwater(tp) or 0
                noted = True
        if noted and len(ends) == len(partitions):
            self.total = sum(max(ends[tp] - starts.get(tp, 0), 0) for tp in partitions)
        return noted


def _letter(record: Any) -> DeadLetter:
    return DeadLetter(
        record.partition,
        record.offset,
        datetime.fromtimestamp(record.timestamp / 1000, UTC),
        record.key,
        record.value,
        tuple(record.headers),
    )


@dataclass
class ReplayReport:
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


SKIP_REFERENCE = "reference: the dead letter has no value (read the original from its topic)"
SKIP_COPY = "copy: the same dead letter was met earlier in this replay"
SKIP_NOT_A_DEAD_LETTER = "no dlq_topic/dlq_partition/dlq_offset headers: not written by the service"
SKIP_UNKNOWN_TOPIC = "original topic is not one the service consumes"
SKIP_ERASED = "the customer's personal data was erased: replaying would store it again"


def replay_verdict(letter: DeadLetter, seen: SeenIdentities, topics: Collection[str]) -> str | None:
    """None when the dead letter is to be published again, else why it is skipped."""
    identity = letter.identity
    if identity is None:
        return SKIP_NOT_A_DEAD_LETTER
    if not seen.add(identity):
        return SKIP_COPY
    if letter.is_reference or letter.value is None:
        return SKIP_REFERENCE
    if identity[0] not in topics:
        return SKIP_UNKNOWN_TOPIC
    return None


async def replay(
    letters: AsyncIterable[DeadLetter],
    producer: AIOKafkaProducer | None,
    topics: Collection[str],
    on_each: Callable[[DeadLetter, str | None], None] = lambda _l, _v: None,
    in_flight: int = 500,
    erased: Callable[[str], Awaitable[bool]] | None = None,
) -> ReplayReport:
    """Publish each dead letter to its original topic with its key, value and original headers, and wait
    until the broker has acknowledged every one. With no producer (a dry run) nothing is sent. A letter of a
    customer `erased` says was erased is skipped: replaying it would store their words again."""
    report, seen = ReplayReport(), SeenIdentities()
    pending: deque[asyncio.Future[RecordMetadata]] = deque()
    async for letter in letters:
        verdict = replay_verdict(letter, seen, topics)
        customer = letter.customer_id() if verdict is None and erased is not None else None
        if customer is not None and erased is not None and await erased(customer):
            verdict = SKIP_ERASED
        on_each(letter, verdict)
        if verdict is not None:
            report.skipped[verdict] += 1
            continue
        if producer is not None:
            assert letter.identity is not None
            pending.append(
                await producer.send(
                    letter.identity[0], letter.value, key=letter.key, headers=letter.original_headers()
                )
            )
            if len(pending) >= in_flight:
                await pending.popleft()
        report.replayed += 1
    await asyncio.gather(*pending)
    return report
