"""The composition root: the one place that wires adapters to use cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker

from service.adapters.compensation_policy_file import load_compensation_limits
from service.adapters.http.api import create_app
from service.adapters.http.asyncapi_page import asyncapi_router
from service.adapters.http.commands import command_router
from service.adapters.http.console import console_router
from service.adapters.http.console.session import Sessions
from service.adapters.http.customers_api import customers_router
from service.adapters.http.incidents_api import incidents_router
from service.adapters.http.sessions_api import sessions_router
from service.adapters.http.token_gate import FailureThrottle, TokenGate
from service.adapters.http.tracing import TraceRequests
from service.adapters.http.transport_security import StrictTransportSecurity
from service.adapters.incident_policy_file import load_incident_policy
from service.adapters.kafka.client import faststream_security, make_producer
from service.adapters.kafka.consumer import SignalConsumer
from service.adapters.kafka.contract import asyncapi, channel_specs, render
from service.adapters.kafka.outgoing import OutgoingTopics
from service.adapters.kafka.relay import EventRelay
from service.adapters.kafka.results import CompensationResult, ResultsConsumer
from service.adapters.kafka.topics import ensure_topics
from service.adapters.policy_file import load_policy
from service.adapters.postgres.case_reads import PostgresCaseReads
from service.adapters.postgres.command_store import PostgresCommandStore
from service.adapters.postgres.console_sessions import PostgresConsoleSessions
from service.adapters.postgres.data_keys import Keyring
from service.adapters.postgres.erasure import PostgresErasureStore
from service.adapters.postgres.event_feed import PostgresEventFeed
from service.adapters.postgres.incident_store import PostgresIncidentStore
from service.adapters.postgres.intake_store import PostgresIntakeStore, forget_offsets
from service.adapters.postgres.migrate import migrate
from service.adapters.postgres.policy_versions import PolicyApplyRunning, apply_new_policy
from service.adapters.postgres.timer_store import PostgresTimerStore
from service.adapters.postgres.trend_store import PostgresTrendStore
from service.adapters.retry import retrying
from service.adapters.sentiment import VaderSentiment
from service.adapters.sla_policy_file import load_sla_policy
from service.app.commands import CommandStore, land_compensation_result
from service.app.erasure import ErasureStore
from service.app.incidents import IncidentStore
from service.app.intake import IntakeResult, IntakeRules, apply_signals
from service.app.ports import Clock, ConsoleSessionStore, PartitionKey, SessionTimeouts
from service.app.reads import CaseReads
from service.config import Settings, keyring_of
from service.domain.case import CaseState
from service.domain.clock_reports import stopped_clocks
from service.domain.commands import CommandRules
from service.domain.compensation_limits import CompensationLimits
from service.domain.signals import Signal
from service.domain.sla import SlaPolicy
from service.domain.trends import TrendPolicy
from service.observability import COMPENSATION_RESULTS, READY, SLA_POLICY_UNAPPLIED, observe_stopped_clocks
from service.tracing import configure_tracing, shutdown_tracing
from service.trend_worker import review_trends_forever
from service.workers import fire_timers_forever

log = structlog.get_logger()


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


def intake_rules(settings: Settings) -> IntakeRules:
    """The policy files read, and new cases' ids keyed by the current master key (MissingMasterKey when unset)."""
    policy = load_policy(settings.policy_file)
    return IntakeRules(
        policy=policy,
        sla=sla_policy(settings),
        history_window=timedelta(days=policy.history_window_days),
        case_ids=keyring_of(settings).master.case_ids(),
        incidents=load_incident_policy(settings.incident_policy_file),
    )


def sla_policy(settings: Settings) -> SlaPolicy:
    return SlaPolicy(
        resolution=settings.sla_resolution,
        first_response=settings.sla_first_response,
        warning_fraction=settings.sla_warning_fraction,
        reopen_window=settings.reopen_window,
        followup_after=settings.followup_after,
        clock_skew=settings.clock_skew,
        max_signal_age=settings.max_signal_age,
        calendars=None if settings.sla_policy_file is None else load_sla_policy(settings.sla_policy_file),
    )


def compensation_limits(settings: Settings) -> CompensationLimits:
    return load_compensation_limits(settings.compensation_policy_file)


def session_timeouts(settings: Settings) -> SessionTimeouts:
    return SessionTimeouts(settings.console_idle_timeout, settings.console_session_lifetime)


_PROBE_SECONDS = 1.5  # /readyz answers within two seconds whatever a dependency does


class Service:
    """Everything the process runs, created in start() and closed in stop(), never at import.

    start() returns as soon as PostgreSQL answers and the migrations are applied, so the HTTP API serves
    while Kafka is still being reached: topics, the producer, the consumers and the relay start in the
    background (waiting out a broker that is away), and /readyz says which dependency is not there yet.
    """

    def __init__(self, settings: Settings, on_consumers_joined: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.on_consumers_joined = on_consumers_joined
        self.rules = intake_rules(settings)  # the policy files are read here, once
        self.limits = compensation_limits(settings)
        self._keyring: Keyring | None = None  # made at start(): no master key, no start
        self.pool: asyncpg.Pool | None = None
        self.broker: KafkaBroker | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: SignalConsumer | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.degraded: dict[str, str] = {}  # what runs on but is not right yet, by loop: /healthz names it

    @property
    def uses_kafka(self) -> bool:
        return self.settings.consume or self.settings.relay

    @property
    def keyring(self) -> Keyring:
        """The customers' keys; MissingMasterKey, naming RECOVERY_DATA_KEYS, when it is unset."""
        if self._keyring is None:
            self._keyring = keyring_of(self.settings)
        return self._keyring

    async def start(self) -> None:
        s = self.settings
        keyring = self.keyring  # before anything is reached: no master key, no start
        self.pool = await retrying(self._connect, "database at start-up")
        if s.auto_migrate:
            async with self.pool.acquire() as conn:
                applied = await migrate(conn)
            log.info("migrations_applied", applied=applied)
        async with self.pool.acquire() as conn:
            await keyring.check(conn)  # a master key still in use but not configured stops start-up
        if s.consume and s.billing_sources is None:
            log.warning(
                "billing_sources_unset",
                detail="billing answers are trusted from every source: set RECOVERY_BILLING_SOURCES",
            )
        rules = self.rules
        if rules.sla.version is not None:
            self._run("sla-policy", self._apply_sla_policy(rules.sla))
        if s.relay:
            store = PostgresTimerStore(self.pool)
            self._run("sla-timers", fire_timers_forever(store, rules.sla))
            trends = TrendPolicy(s.trend_threshold, s.trend_window)
            self._run("trend-reviews", review_trends_forever(PostgresTrendStore(self.pool), trends))
        if self.uses_kafka:
            self._run("kafka-start", self._start_kafka(rules))
        log.info("service_started", group=s.consumer_group, consume=s.consume, relay=s.relay)

    async def _apply_sla_policy(self, sla: SlaPolicy) -> None:
        """A policy file of a version not applied in full yet corrects the open cases; one instance does it.
        Until an apply succeeds it is tried again, and the metric and /healthz say it has not."""
        while (problem := await self._sla_policy_problem(sla)) is not None:
            SLA_POLICY_UNAPPLIED.set(1)
            self.degraded["sla-policy"] = problem
            await asyncio.sleep(self.settings.sla_policy_retry_interval.total_seconds())
        SLA_POLICY_UNAPPLIED.set(0)
        self.degraded.pop("sla-policy", None)

    async def _sla_policy_problem(self, sla: SlaPolicy) -> str | None:
        """Why the policy is not applied in full after one try; None once it is (or another instance applies it)."""
        pool = self.pool
        assert pool is not None
        try:
            change = await retrying(lambda: apply_new_policy(pool, self.keyring, sla), "apply the SLA policy")
        except PolicyApplyRunning:
            log.info("sla_policy_applied_elsewhere", version=sla.version)
            return None
        except Exception as e:  # the service serves on with the new policy for new cases; say why loudly
            log.error("sla_policy_apply_failed", version=sla.version, error=repr(e))
            return f"version {sla.version} not applied: {type(e).__name__}"
        if change is None:
            return None
        log.info(
            "sla_policy_applied",
            from_version=change.from_version,
            to_version=change.to_version,
            open_cases=change.looked_at,
            changed=change.changed,
            failed=len(change.failed),
        )
        if change.failed:
            return f"version {sla.version} applied but {len(change.failed)} open cases could not be corrected"
        return None

    async def _connect(self) -> asyncpg.Pool:
        s = self.settings
        return await asyncpg.create_pool(
            s.database_url.get_secret_value(),
            min_size=2,
            max_size=s.database_pool_size,
            timeout=10,
            command_timeout=60,  # a connection that died without a reset fails (transient) instead of hanging
        )

    def _run(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._task_ended)
        self.tasks.append(task)

    async def _start_kafka(self, rules: IntakeRules) -> None:
        """Topics, the producer, then the consumers and the relay; a broker that is away is waited out."""
        assert self.pool is not None
        s, pool = self.settings, self.pool
        created = await retrying(lambda: asyncio.wait_for(ensure_topics(s, s.all_topics()), 30), "topics")
        if created:  # a topic made just now has no records: offsets stored for an earlier one are void
            await retrying(lambda: forget_offsets(pool, created), "forget offsets of new topics")
        log.info("topics_ready", created=created)
        self.producer = await retrying(self._start_producer, "producer")
        if s.consume:
            await retrying(lambda: self._start_consumers(rules), "consumers")
            self._run("consumers-joined", self._consumers_joined())
        if s.relay:
            relay = EventRelay(PostgresEventFeed(self.pool, self.keyring if s.publish_free_text else None), self.producer, OutgoingTopics.from_settings(s))
            self._run("relay", relay.run())
        log.info("kafka_started", kafka=s.kafka_bootstrap_servers)

    async def _consumers_joined(self) -> None:
        """Say when signals published now are read: the signal consumer has joined its group."""
        assert self.consumer is not None
        await self.consumer.joined.wait()
        log.info("consumers_joined", group=self.settings.consumer_group)
        if self.on_consumers_joined is not None:
            self.on_consumers_joined()

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = make_producer(self.settings)
        try:
            await asyncio.wait_for(producer.start(), 30)
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _start_consumers(self, rules: IntakeRules) -> None:
        """The signal consumer and the billing results consumer; they join their groups here."""
        assert self.pool is not None and self.producer is not None
        s = self.settings
        producer = self.producer
        store = PostgresIntakeStore(self.pool, self.keyring)
        sentiment, clock = VaderSentiment(), SystemClock()

        async def apply(signals: list[Signal], offsets: dict[PartitionKey, int]) -> IntakeResult:
            return await apply_signals(signals, offsets, s.consumer_group, store, rules, sentiment, clock)

        broker = KafkaBroker(
            s.kafka_bootstrap_servers, security=faststream_security(s), logger=None, graceful_timeout=30.0
        )
        consumer = SignalConsumer(
            broker,
            producer,
            s.signal_topics(),
            s.topic_dlq,
            s.consumer_group,
            apply,
            store,
            s.batch_max_records,
            s.batch_timeout_ms,
            s.max_text_length,
        )
        commands = self.commands()

        async def land(result: CompensationResult) -> None:
            await land_compensation_result(
                result.request_id,
                result.settled,
                result.detail,
                commands,
                commands,
                rules.sla,
                result.traceparent,
            )
            COMPENSATION_RESULTS.labels("settled" if result.settled else "failed").inc()

        ResultsConsumer(
            broker,
            producer,
            s.topic_compensation_results,
            f"{s.consumer_group}-billing",
            s.topic_dlq,
            land,
            None if s.billing_sources is None else frozenset(s.billing_sources),
        )
        # The writer runs before the broker starts: the signal group starts delivering as soon as it has
        # joined, and broker.start() returns only after the billing group has joined too (seconds later).
        consumer.start()
        try:
            await broker.start()
        except BaseException:
            await broker.stop()
            await consumer.drain()
            raise
        self.broker, self.consumer = broker, consumer

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
        return PostgresCaseReads(self.pool, self.keyring, self.limits.customer_window)

    def console_sessions(self) -> PostgresConsoleSessions:
        assert self.pool is not None, "the service has not started"
        return PostgresConsoleSessions(self.pool, session_timeouts(self.settings))

    def erasures(self) -> PostgresErasureStore:
        assert self.pool is not None, "the service has not started"
        return PostgresErasureStore(self.pool, self.keyring)

    def incident_commands(self) -> PostgresIncidentStore:
        assert self.pool is not None, "the service has not started"
        return PostgresIncidentStore(self.pool, self.keyring)

    def commands(self) -> PostgresCommandStore:
        assert self.pool is not None, "the service has not started"
        return PostgresCommandStore(self.pool, self.keyring, self._observe_clocks)

    def _observe_clocks(self, before: CaseState | None, after: CaseState) -> None:
        observe_stopped_clocks(stopped_clocks(before, after, self.rules.sla))

    async def ready(self) -> dict[str, bool]:
        """Each dependency this process needs, probed at once and never for longer than _PROBE_SECONDS."""
        probes = {"database": self._database_answers()}
        if self.uses_kafka:
            probes["kafka"] = self._kafka_answers()
        answers = await asyncio.gather(*(_within(p, _PROBE_SECONDS) for p in probes.values()))
        states = dict(zip(probes, answers, strict=True))
        for dependency, up in states.items():
            READY.labels(dependency).set(1 if up else 0)
        return states

    async def _database_answers(self) -> bool:
        if self.pool is None:
            return False
        return await self.reads().ping(_PROBE_SECONDS)

    async def _kafka_answers(self) -> bool:
        if self.producer is None or (self.settings.consume and self.broker is None):
            return False  # still starting: the consumers have not joined yet
        if self.broker is not None:
            return bool(await self.broker.ping(timeout=_PROBE_SECONDS))
        await self.producer.client.fetch_all_metadata()
        return True

    def failures(self) -> list[str]:
        """Why the process cannot go on (empty while it can): restart it."""
        reasons = []
        if self.consumer is not None and self.consumer.failed is not None:
            reasons.append(f"signal consumer: {type(self.consumer.failed).__name__}")
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                reasons.append(f"{task.get_name()}: {type(task.exception()).__name__}")
        return reasons

    def degradations(self) -> list[str]:
        """What works but is not right yet (the process goes on and tries again; no restart needed)."""
        return [f"{loop}: {why}" for loop, why in sorted(self.degraded.items())]

    def alive(self) -> bool:
        """False once the consumer or a background loop has stopped on an error: restart the process."""
        return not self.failures()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_failed", task=task.get_name(), error=repr(task.exception()))


async def _within(probe: Coroutine[Any, Any, bool], seconds: float) -> bool:
    """The probe's answer, or False when it fails or has not answered in time (it is then abandoned, not
    awaited: cancelling a query on a frozen server can itself hang)."""
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        return False
    return not task.exception() and bool(task.result())


def build_app(settings: Settings, on_consumers_joined: Callable[[], None] | None = None) -> FastAPI:
    """The service as an ASGI app; on_consumers_joined is called once the signal consumer has joined."""
    configure_tracing()  # the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER names an exporter
    service = Service(settings, on_consumers_joined)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()
            shutdown_tracing()  # export the spans still buffered

    return http_app(service, settings, lifespan)


class Backend(Protocol):
    """What the HTTP app serves from: the stores (asked for on each request, once the process has started),
    the probes and the rules. Service is the process's; the fast tier serves from in-memory fakes."""

    rules: IntakeRules
    limits: CompensationLimits

    def reads(self) -> CaseReads: ...

    def commands(self) -> CommandStore: ...

    def console_sessions(self) -> ConsoleSessionStore: ...

    def erasures(self) -> ErasureStore: ...

    def incident_commands(self) -> IncidentStore: ...

    async def ready(self) -> dict[str, bool]: ...

    def failures(self) -> list[str]: ...

    def degradations(self) -> list[str]: ...


def http_app(
    service: Backend,
    settings: Settings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> FastAPI:
    """The HTTP API and the console over a backend's stores; `clock` is the console sessions' (a test moves it)."""
    trends = TrendPolicy(settings.trend_threshold, settings.trend_window)
    rules = CommandRules(service.rules.sla, settings.root_causes, service.limits, service.rules.case_ids)
    commands = command_router(service.commands, rules, trends)
    # The public wire contract, generated in-process by the exporter that writes schemas/: one source of truth.
    contract = asyncapi_router(render(asyncapi(channel_specs(settings))))  # the topics this service uses
    routers = [
        commands,
        sessions_router(service.console_sessions),
        customers_router(service.erasures),
        incidents_router(service.reads, service.incident_commands, service.rules.incidents),
        contract,
        _console(service, settings, rules, trends, clock),
    ]
    gate = TokenGate(settings.api_tokens, FailureThrottle(settings.auth_failures_per_minute))
    app = create_app(
        service.reads,
        gate,
        service.ready,
        lifespan,
        service.failures,
        routers,
        trends,
        service.rules.sla,
        service.degradations,
    )
    if settings.console_cookie_secure:
        app.add_middleware(StrictTransportSecurity)
    app.add_middleware(TraceRequests)  # outermost: its span covers every other middleware
    return app


def _console(
    service: Backend, settings: Settings, rules: CommandRules, trends: TrendPolicy, clock: Clock
) -> APIRouter:
    key = settings.console_session_key
    sessions = Sessions(
        service.console_sessions,
        settings.api_tokens,
        None if key is None else key.get_secret_value().encode(),
        session_timeouts(settings),
        settings.console_cookie_secure,
        clock,
    )
    return console_router(service.reads, service.commands, rules, trends, sessions)
