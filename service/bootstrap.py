"""The composition root: the one place that wires adapters to use cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from service.adapters.http.api import create_app
from service.adapters.http.commands import command_router
from service.adapters.kafka.client import faststream_security, make_producer
from service.adapters.kafka.consumer import SignalConsumer
from service.adapters.kafka.outgoing import OutgoingTopics
from service.adapters.kafka.relay import EventRelay
from service.adapters.kafka.results import CompensationResult, ResultsConsumer
from service.adapters.kafka.topics import ensure_topics
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.command_store import PostgresCommandStore
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.adapters.postgres.intake_store import PostgresIntakeStore
from service.adapters.postgres.migrate import migrate
from service.adapters.postgres.timer_store import PostgresTimerStore
from service.adapters.sentiment import VaderSentiment
from service.app.commands import land_compensation_result
from service.app.intake import IntakeResult, IntakeRules, apply_signals
from service.app.ports import PartitionKey
from service.config import Settings
from service.domain.compensation import CompensationLimits
from service.domain.severity import load_default_policy
from service.domain.signals import Signal
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.observability import COMPENSATION_RESULTS
from service.workers import fire_timers_forever

log = structlog.get_logger()


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def intake_rules(settings: Settings) -> IntakeRules:
    policy = load_default_policy()
    sla = SlaPolicy(
        resolution=settings.sla_resolution,
        first_response=settings.sla_first_response,
        warning_fraction=settings.sla_warning_fraction,
        reopen_window=settings.reopen_window,
        followup_after=settings.followup_after,
    )
    return IntakeRules(policy=policy, sla=sla, history_window=timedelta(days=policy.history_window_days))


def compensation_limits(settings: Settings) -> CompensationLimits:
    return CompensationLimits(settings.compensation_limits, settings.compensation_stake_factor)


class Service:
    """Everything the process runs, created in start() and closed in stop(), never at import."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.broker: KafkaBroker | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: SignalConsumer | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        s = self.settings
        self.pool = await asyncpg.create_pool(
            s.database_url.get_secret_value(), min_size=2, max_size=s.database_pool_size
        )
        if s.auto_migrate:
            async with self.pool.acquire() as conn:
                applied = await migrate(conn)
            log.info("migrations_applied", applied=applied)
        created = await ensure_topics(
            s,
            [
                *s.signal_topics(),
                s.topic_dlq,
                s.topic_case_events,
                s.topic_sla,
                s.topic_compensation_requests,
                s.topic_compensation_results,
                s.topic_trends,
            ],
        )
        if created:  # a topic made just now has no records: offsets stored for an earlier one are void
            await self.pool.execute("DELETE FROM consumer_offsets WHERE topic = ANY($1::text[])", created)
        log.info("topics_ready", created=created)
        producer = self.producer = make_producer(s)
        await producer.start()
        rules = intake_rules(s)
        if s.consume:
            await self._start_consumers(rules, producer)
        if s.relay:
            relay = EventRelay(PostgresEventFeed(self.pool), producer, OutgoingTopics.from_settings(s))
            self.tasks = [
                asyncio.create_task(
                    fire_timers_forever(PostgresTimerStore(self.pool), rules.sla), name="sla-timers"
                ),
                asyncio.create_task(relay.run(), name="relay"),
            ]
        for task in self.tasks:
            task.add_done_callback(self._task_ended)
        log.info(
            "service_started",
            kafka=s.kafka_bootstrap_servers,
            group=s.consumer_group,
            consume=s.consume,
            relay=s.relay,
        )

    async def _start_consumers(self, rules: IntakeRules, producer: AIOKafkaProducer) -> None:
        """The signal consumer and the billing results consumer."""
        assert self.pool is not None
        s = self.settings
        store = PostgresIntakeStore(self.pool)
        sentiment, clock = VaderSentiment(), SystemClock()

        async def apply(signals: list[Signal], offsets: dict[PartitionKey, int]) -> IntakeResult:
            return await apply_signals(signals, offsets, s.consumer_group, store, rules, sentiment, clock)

        self.broker = KafkaBroker(
            s.kafka_bootstrap_servers, security=faststream_security(s), logger=None, graceful_timeout=30.0
        )
        self.consumer = SignalConsumer(
            self.broker,
            producer,
            s.signal_topics(),
            s.topic_dlq,
            s.consumer_group,
            apply,
            store,
            s.batch_max_records,
            s.batch_timeout_ms,
        )
        commands = PostgresCommandStore(self.pool)

        async def land(result: CompensationResult) -> None:
            await land_compensation_result(
                result.request_id, result.settled, result.detail, commands, commands, rules.sla
            )
            COMPENSATION_RESULTS.labels("settled" if result.settled else "failed").inc()

        ResultsConsumer(
            self.broker,
            producer,
            s.topic_compensation_results,
            f"{s.consumer_group}-billing",
            s.topic_dlq,
            land,
        )
        self.consumer.start()
        await self.broker.start()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.broker is not None:
            await self.broker.stop()  # waits for the subscriber's current batch (graceful_timeout)
        if self.consumer is not None:
            await self.consumer.drain()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()
        log.info("service_stopped")

    def reads(self) -> PostgresCaseReads:
        assert self.pool is not None, "the service has not started"
        return PostgresCaseReads(self.pool)

    def commands(self) -> PostgresCommandStore:
        assert self.pool is not None, "the service has not started"
        return PostgresCommandStore(self.pool)

    async def ready(self) -> dict[str, bool]:
        database = kafka = False
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2)
                database = True
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                database = False
        if self.broker is not None:
            kafka = bool(await self.broker.ping(timeout=2))
        elif self.producer is not None:  # an instance that does not consume
            try:
                await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 2)
                kafka = True
            except (KafkaError, OSError, TimeoutError):
                kafka = False
        return {"database": database, "kafka": kafka}

    def alive(self) -> bool:
        """False once the consumer or a background loop has stopped on an error: restart the process."""
        consumer_ok = self.consumer is None or self.consumer.failed is None
        return consumer_ok and not any(t.done() and not t.cancelled() for t in self.tasks)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_failed", task=task.get_name(), error=repr(task.exception()))


def build_app(settings: Settings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return http_app(service, settings, lifespan)


def http_app(
    service: Service,
    settings: Settings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The HTTP API over a service's stores."""
    trends = TrendPolicy(settings.trend_threshold, settings.trend_window)
    commands = command_router(
        service.commands,
        intake_rules(settings).sla,
        settings.root_causes,
        compensation_limits(settings),
        trends,
    )
    return create_app(service.reads, settings.api_tokens, service.ready, lifespan, service.alive, [commands])
