"""One bad outgoing event holds back only its own case: it is parked, its case's later events wait behind it,
every other case is published, and the operator's `recovery parked` commands let the case go on, in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import CorruptRecordException, MessageSizeTooLargeError
from prometheus_client import REGISTRY

from service.adapters.kafka.outgoing import OutgoingTopics
from service.adapters.kafka.relay import EventRelay
from service.adapters.kafka.topics import ensure_topics
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.bootstrap import Service
from service.config import Settings
from tests.infra import Kafka
from tests.integration.test_sla_and_relay import Topic, ce
from tests.support import eventually, make_settings, recovery_cli, relay_caught_up


class Log:
    """Appends case events to the log as the stores do, one committed row at a time, in position order."""

    def __init__(self, db: asyncpg.Connection) -> None:
        self.db = db
        self.versions: dict[str, int] = {}

    async def append(self, case_id: str, type_: str, **data: Any) -> tuple[int, str]:
        version = self.versions[case_id] = self.versions.get(case_id, 0) + 1
        event_id = str(uuid.uuid4())
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps({"type": type_, "case_id": case_id, "at": at, **data})
        position = await self.db.fetchval(
            "INSERT INTO events (stream_id, version, event_id, type, data) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING position",
            case_id,
            version,
            event_id,
            type_,
            body,
        )
        return int(position), event_id

    async def note(self, case_id: str) -> str:
        return (await self.append(case_id, "case.acknowledged", actor="ana"))[1]

    async def refund(self, case_id: str, amount: str) -> tuple[int, str]:
        return await self.append(
            case_id,
            "case.compensation_requested",
            customer_id=f"cust-{case_id}",
            request_id=f"req-{case_id}",
            kind="refund",
            amount=amount,
            currency="EUR",
            reason="The customer's own words: sorry for the flood",
            actor="ana",
            needs_approval=False,
        )


async def parked(db: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await db.fetch("SELECT position, stream_id, reason, state, behind FROM parked_events")
    return {r["position"]: r for r in rows}


def ids_of(records: list, case_id: str) -> list[str]:  # type: ignore[type-arg]
    return [ce(r)["ce_id"] for r in records if r.key.decode() == case_id]


async def gauge_is(value: float) -> bool:
    return REGISTRY.get_sample_value("recovery_parked_events") == value


async def test_a_poison_event_holds_back_only_its_case_until_it_is_fixed_and_released(
    service: Service, settings: Settings, kafka: Kafka, db: asyncpg.Connection, database_url: str
) -> None:
    log = Log(db)
    async with (
        Topic(kafka, settings.topic_case_events) as events,
        Topic(kafka, settings.topic_compensation_requests) as billing,
    ):
        a1 = await log.note("case-a")
        b1 = await log.note("case-b")
        # A decimal comma: billing's contract refuses it, so the stored event cannot be mapped.
        poison, poison_id = await log.refund("case-a", "12,50")
        b2 = await log.note("case-b")
        a3 = await log.note("case-a")
        b3 = await log.note("case-b")

        async def b_published() -> bool:
            return ids_of(await events.poll(), "case-b") == [b1, b2, b3]

        await eventually(b_published, what="case-b's events published around case-a's poison event")
        await eventually(lambda: relay_caught_up(db), what="the relay position past the poison event")
        rows = await parked(db)
        assert set(rows) == {poison, poison + 2}
        own = rows[poison]
        assert own["stream_id"] == "case-a" and own["state"] == "parked" and own["behind"] is None
        assert (
            own["reason"].startswith("UnpublishableEvent: cannot publish the stored event")
            and "data.amount" in own["reason"]
        )
        assert "12,50" not in own["reason"] and "flood" not in own["reason"]  # no stored data in the reason
        assert rows[poison + 2]["reason"] == f"behind parked event {poison}"
        assert ids_of(events.records, "case-a") == [a1]
        await eventually(lambda: gauge_is(2), what="the parked gauge at 2")

        a4 = await log.note("case-a")  # a later batch: still held behind the poison event
        b4 = await log.note("case-b")

        async def b4_published() -> bool:
            return b4 in ids_of(await events.poll(), "case-b")

        await eventually(b4_published, what="case-b's next event")
        await eventually(lambda: relay_caught_up(db), what="the relay position at the head")
        assert ids_of(events.records, "case-a") == [a1]
        assert (await parked(db)).keys() == {poison, poison + 2, poison + 4}

        listing = recovery_cli(database_url, "parked", "list")
        assert listing.returncode == 0, listing.stderr
        first = listing.stdout.splitlines()[0]
        assert str(poison) in first and "case-a" in first and "case.compensation_requested" in first
        assert "data.amount" in first and len(listing.stdout.splitlines()) == 3

        # Released before the fix: the poison event fails again and stays parked, the rest behind it.
        assert recovery_cli(database_url, "parked", "retry", "--case", "case-a").returncode == 0

        async def parked_again() -> bool:
            rows = await parked(db)
            return all(r["state"] == "parked" for r in rows.values()) and rows[poison]["behind"] is None

        await eventually(parked_again, what="the unfixed event parked again")
        assert ids_of(await events.poll(), "case-a") == [a1]

        # The fix (an upcaster would do the same): the amount in plain notation. Then the case goes on, in order.
        await db.execute(
            "UPDATE events SET data = replace(data::text, '\"12,50\"', '\"12.50\"')::json WHERE position = $1",
            poison,
        )
        assert recovery_cli(database_url, "parked", "retry", "--all").returncode == 0

        async def a_published() -> list[str] | None:
            published = ids_of(await events.poll(), "case-a")
            return published if len(published) >= 4 else None

        assert await eventually(a_published, what="case-a published after the fix") == [a1, poison_id, a3, a4]

        async def refund() -> list | None:  # type: ignore[type-arg]
            return await billing.poll() or None

        [request] = await eventually(refund, what="the fixed refund on the billing topic")
        assert json.loads(request.value)["amount"] == "12.50"
        assert {r["state"] for r in (await parked(db)).values()} == {"published"}
        await eventually(lambda: gauge_is(0), what="the parked gauge back to 0")
        assert recovery_cli(database_url, "parked", "list").stdout == ""
        assert ids_of(events.records, "case-b") == [b1, b2, b3, b4]


async def test_an_operator_skips_a_poison_event_and_its_case_goes_on_in_order(
    service: Service, settings: Settings, kafka: Kafka, db: asyncpg.Connection, database_url: str
) -> None:
    log = Log(db)
    async with Topic(kafka, settings.topic_case_events) as events:
        a1 = await log.note("case-s")
        poison, _ = await log.refund("case-s", "-5.00")
        a3 = await log.note("case-s")
        a4 = await log.note("case-s")
        other = await log.note("case-t")

        async def other_published() -> bool:
            return ids_of(await events.poll(), "case-t") == [other]

        await eventually(other_published, what="the other case published")
        await eventually(lambda: relay_caught_up(db), what="the relay position past the poison event")
        assert (await parked(db)).keys() == {poison, poison + 1, poison + 2}

        skipped = recovery_cli(database_url, "parked", "skip", "--position", str(poison))
        assert skipped.returncode == 0, skipped.stderr

        async def rest_published() -> list[str] | None:
            published = ids_of(await events.poll(), "case-s")
            return published if len(published) >= 3 else None

        assert await eventually(rest_published, what="the case's later events") == [a1, a3, a4]
        states = {p: r["state"] for p, r in (await parked(db)).items()}
        assert states == {poison: "skipped", poison + 1: "published", poison + 2: "published"}
        again = recovery_cli(database_url, "parked", "skip", "--position", str(poison))
        assert again.returncode == 1 and "no parked event" in again.stderr
        everything = recovery_cli(database_url, "parked", "list", "--all")
        assert "[skipped]" in everything.stdout and "[published]" in everything.stdout


async def test_an_event_over_the_record_limit_is_parked_not_retried_forever(
    service: Service, settings: Settings, kafka: Kafka, db: asyncpg.Connection, database_url: str
) -> None:
    log = Log(db)
    async with Topic(kafka, settings.topic_case_events) as events:
        big, big_id = await log.append("case-big", "case.step_added", actor="ana", text="x" * 2_000_000)
        after = await log.note("case-big")
        other = await log.note("case-small")

        async def other_published() -> bool:
            return ids_of(await events.poll(), "case-small") == [other]

        await eventually(other_published, what="the other case published past the large event")
        await eventually(lambda: relay_caught_up(db), what="the relay position past the large event")
        rows = await parked(db)
        assert rows[big]["reason"].startswith("MessageSizeTooLargeError") and rows[big + 1]["behind"] == big
        assert service.alive()

        # Shortened by the operator's fix, then released: both go out in order.
        await db.execute(
            "UPDATE events SET data = json_build_object('type', type, 'case_id', stream_id,"
            " 'at', data->>'at', 'actor', 'ana', 'text', 'shortened') WHERE position = $1",
            big,
        )
        assert recovery_cli(database_url, "parked", "retry", "--case", "case-big").returncode == 0

        async def published() -> list[str] | None:
            ids = ids_of(await events.poll(), "case-big")
            return ids if len(ids) >= 2 else None

        assert await eventually(published, what="the large event's case after the fix") == [big_id, after]


class RefusingBroker:
    """The real producer, but the broker answers MESSAGE_TOO_LARGE for a record batch that holds a record
    carrying `marker` (as a broker with a lower max.message.bytes would), until `marker` is set to None."""

    def __init__(
        self, producer: AIOKafkaProducer, marker: bytes, error: type[Exception] = MessageSizeTooLargeError
    ) -> None:
        self.producer = producer
        self.marker: bytes | None = marker
        self.error = error
        self.refusals = 0

    def create_batch(self) -> RefusableBatch:
        return RefusableBatch(self.producer.create_batch(), self)

    async def partitions_for(self, topic: str) -> set[int]:
        return await self.producer.partitions_for(topic)  # type: ignore[no-any-return]

    async def send_batch(self, batch: RefusableBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if batch.refused:
            self.refusals += 1
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(self.error("refused by the test's broker"))
            return refused
        return await self.producer.send_batch(batch.inner, topic, partition=partition)  # type: ignore[no-any-return]


class RefusableBatch:
    def __init__(self, inner: Any, broker: RefusingBroker) -> None:
        self.inner, self.broker, self.refused = inner, broker, False

    def append(self, *, key: bytes, value: bytes, timestamp: None, headers: list[tuple[str, bytes]]) -> Any:
        metadata = self.inner.append(key=key, value=value, timestamp=timestamp, headers=headers)
        if metadata is not None and self.broker.marker is not None and self.broker.marker in value:
            self.refused = True
        return metadata


def first_seen(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


async def test_a_record_the_broker_refuses_is_found_and_parked_and_published_once_the_broker_takes_it(
    kafka: Kafka, database_url: str, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    settings = make_settings(kafka, database_url)
    await ensure_topics(settings, [settings.topic_case_events])
    broker = RefusingBroker(producer, b"REFUSED-BY-THE-BROKER")
    relay = EventRelay(PostgresEventFeed(pool), broker, OutgoingTopics.from_settings(settings))  # type: ignore[arg-type]
    running = asyncio.create_task(relay.run())
    db = await pool.acquire()
    try:
        async with Topic(kafka, settings.topic_case_events) as events:
            log = Log(db)
            r1 = await log.note("case-r")
            s1 = await log.note("case-s")
            refused, refused_id = await log.append("case-r", "case.step_added", actor="REFUSED-BY-THE-BROKER")
            r3 = await log.note("case-r")
            s2 = await log.note("case-s")

            async def others_published() -> bool:
                return first_seen(ids_of(await events.poll(), "case-s")) == [s1, s2]

            await eventually(others_published, what="the other case published around the refused record")
            await eventually(lambda: relay_caught_up(db), what="the relay position past the refused record")
            rows = await parked(db)
            assert rows.keys() == {refused, refused + 1}
            assert (
                rows[refused]["reason"].startswith("MessageSizeTooLargeError")
                and rows[refused]["behind"] is None
            )
            assert rows[refused + 1]["behind"] == refused
            assert first_seen(ids_of(events.records, "case-r")) == [
                r1
            ]  # r1 may go out twice, with its one id

            broker.marker = None  # the topic's limit was raised
            released = recovery_cli(database_url, "parked", "retry", "--case", "case-r")
            assert released.returncode == 0, released.stderr

            async def case_published() -> list[str] | None:
                ids = first_seen(ids_of(await events.poll(), "case-r"))
                return ids if len(ids) == 3 else None

            assert await eventually(case_published, what="the case after the retry") == [r1, refused_id, r3]
            assert not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await pool.release(db)


async def test_a_corrupt_record_refusal_parks_its_event_when_the_broker_takes_others_and_waits_when_it_takes_none(
    kafka: Kafka, database_url: str, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    settings = make_settings(kafka, database_url)
    await ensure_topics(settings, [settings.topic_case_events])
    broker = RefusingBroker(producer, b"CORRUPT-TO-THE-BROKER", CorruptRecordException)
    relay = EventRelay(PostgresEventFeed(pool), broker, OutgoingTopics.from_settings(settings))  # type: ignore[arg-type]
    running = asyncio.create_task(relay.run())
    db = await pool.acquire()
    try:
        async with Topic(kafka, settings.topic_case_events) as events:
            log = Log(db)
            first = await log.note("case-c")
            await eventually(lambda: relay_caught_up(db), what="a first record the broker took")
            refused, _ = await log.append("case-c", "case.step_added", actor="CORRUPT-TO-THE-BROKER")
            other = await log.note("case-d")

            async def other_published() -> bool:
                return first_seen(ids_of(await events.poll(), "case-d")) == [other]

            await eventually(other_published, what="the other case past the corrupt record")
            await eventually(lambda: relay_caught_up(db), what="the relay past the corrupt record")
            rows = await parked(db)
            assert rows.keys() == {refused} and rows[refused]["reason"].startswith("CorruptRecordException")

            broker.marker, broker.refusals = b"", 0  # now the cluster refuses every record: the relay waits
            waiting = await log.note("case-e")
            await eventually(lambda: refusing_everything(broker), what="the broker refusing the next record")
            assert (await parked(db)).keys() == {refused} and not running.done()
            broker.marker = None  # the cluster is back

            async def published() -> bool:
                return first_seen(ids_of(await events.poll(), "case-e")) == [waiting]

            await eventually(published, what="the event that waited for the cluster")
            assert first_seen(ids_of(events.records, "case-c")) == [first]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await pool.release(db)


async def refusing_everything(broker: RefusingBroker) -> bool:
    return broker.refusals > 1  # the record, then the probe
