"""Structured logs (JSON, or human-readable on a terminal) and the Prometheus metric objects (names:
recovery_<noun>_<unit>)."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from collections.abc import Sequence
from typing import Literal

import structlog
from prometheus_client import Counter, Gauge, Histogram

from service.domain.clock_reports import StoppedClock

SIGNALS = Counter(
    "recovery_signals_total",
    "Signals consumed, by kind and outcome (opened, attached, escalated, reopened, not_a_failure,"
    " duplicate, dead_lettered).",
    ["kind", "outcome"],
)
BATCH_SIZE = Histogram(
    "recovery_batch_records",
    "Records per consumed batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "recovery_batch_seconds",
    "Seconds to apply one consumed batch (decode, transaction, offset commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_CONFLICTS = Counter(
    "recovery_batch_conflicts_total", "Batches decided again after losing an optimistic-concurrency race."
)
INCIDENTS_OPENED = Counter(
    "recovery_incidents_opened_total",
    "Incidents a surge rule opened, by rule and event type (recovery.incidents.v1 carries them).",
    ["rule", "type"],
)
DB_RETRIES = Counter(
    "recovery_database_retries_total", "Batches retried because the database was unreachable."
)
ISOLATED_RECORDS = Counter(
    "recovery_isolated_records_total",
    "Records that failed to decode or apply for a reason other than a dependency (a bug they trigger),"
    " isolated and sent to the dead-letter topic while the rest of their batch was applied; by stage.",
    ["stage"],
)
DEAD_LETTER_REFERENCES = Counter(
    "recovery_dead_letter_references_total",
    "Records too large to dead-letter as they are, dead-lettered as a reference (topic, partition, offset).",
)
READY = Gauge(
    "recovery_ready",
    "1 while this process's dependency answers (database, kafka), as /readyz reports it; 0 otherwise.",
    ["dependency"],
)
OPEN_CASES = Gauge("recovery_open_cases", "Open cases by severity.", ["severity"])
ASSIGNED_PARTITIONS = Gauge(
    "recovery_assigned_partitions", "Signal-topic partitions this instance consumes right now."
)
CONSUMER_LAG = Gauge(
    "recovery_consumer_lag_records",
    "Records behind the end of each consumed partition.",
    ["topic", "partition"],
)


SLA_WARNINGS = Counter("recovery_sla_warnings_total", "Pre-breach SLA warnings fired.", ["severity", "sla"])
SLA_BREACHES = Counter("recovery_sla_breaches_total", "SLA breaches fired.", ["severity", "sla"])
SLA_OUTCOMES = Counter(
    "recovery_sla_outcomes_total",
    "SLA clocks stopped (a first response, a resolution), by clock and outcome: met by the deadline or breached.",
    ["sla", "outcome"],
)
_CLOCK_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400, 14 * 86400)
TIME_TO_FIRST_RESPONSE = Histogram(
    "recovery_time_to_first_response_seconds",
    "From a case's opening to its first response, by severity; time: wall (elapsed) or business (open time"
    " of the clock's calendar).",
    ["severity", "time"],
    buckets=_CLOCK_BUCKETS,
)
TIME_TO_RESOLUTION = Histogram(
    "recovery_time_to_resolution_seconds",
    "From the resolution clock's start (opening or reopening) to the resolution, by severity; time: wall or"
    " business.",
    ["severity", "time"],
    buckets=(*_CLOCK_BUCKETS, 28 * 86400, 56 * 86400),
)
TIMER_LAG = Histogram(
    "recovery_timer_lag_seconds",
    "From a timer's due time to its firing, on the database clock.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
SLA_POLICY_UNAPPLIED = Gauge(
    "recovery_sla_policy_unapplied",
    "1 while this instance's SLA policy version is not applied in full to the open cases: an apply failed or"
    " left cases uncorrected, and is tried again.",
)
RELAY_LAG = Gauge("recovery_relay_lag_events", "Events in the log not yet published by the relay.")
RELAY_LEADER = Gauge("recovery_relay_leader", "1 while this instance holds the relay lease and publishes.")
EVENTS_PUBLISHED = Counter(
    "recovery_events_published_total", "Events published to Kafka, by topic.", ["topic"]
)
PARKED_EVENTS = Gauge(
    "recovery_parked_events",
    "Outgoing events parked now (not published): unmappable or refused by the broker, or behind such an"
    " event of their case. Set by the relay leader.",
)
EVENTS_PARKED = Counter(
    "recovery_events_parked_total", "Outgoing events the relay parked instead of publishing."
)


COMPENSATIONS_REQUESTED = Counter(
    "recovery_compensations_requested_total",
    "Compensation requests published to billing.",
    ["kind", "currency"],
)
COMPENSATION_RESULTS = Counter(
    "recovery_compensation_results_total",
    "Billing's answers landed on cases, by outcome (settled, failed).",
    ["outcome"],
)


HTTP_REQUESTS = Counter(
    "recovery_http_requests_total",
    "HTTP requests answered, by method, route template (`unmatched` for a path no route serves) and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "recovery_http_request_seconds",
    "Seconds from an HTTP request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_FAILURES = Counter(
    "recovery_auth_failures_total",
    "Failed authentications by surface (api: a 401; console: a refused sign-in) and outcome (unknown_token,"
    " or throttled: refused with 429 before the token was looked at).",
    ["surface", "outcome"],
)
BUILD_INFO = Gauge(
    "recovery_build_info",
    "Always 1; the running package's version and the Python it runs on.",
    ["version", "python"],
)
VERSION = importlib.metadata.version("recovery-loop")
"""The running package's version: in recovery_build_info and in /openapi.json."""
BUILD_INFO.labels(VERSION, platform.python_version()).set(1)


LogFormat = Literal["auto", "json", "console"]


def configure_logging(level: str = "INFO", log_format: LogFormat = "auto") -> None:
    """Logs on stdout: one JSON object per line, or structlog's aligned human-readable lines when asked
    (`console`) or, with `auto`, when stdout is a terminal. Customer free text is never passed to a logger."""
    terminal = sys.stdout.isatty()
    console = log_format == "console" or (log_format == "auto" and terminal)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=terminal) if console else structlog.processors.JSONRenderer()
    )
    handler = logging.StreamHandler(sys.stdout)  # libraries' records (uvicorn, aiokafka) rendered alike
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    # The console renderer prints exceptions itself (format_exc_info would flatten them first).
    exceptions = [] if console else [structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


def observe_stopped_clocks(stopped: Sequence[StoppedClock]) -> None:
    """Met or breached per clock; the built-in clocks' times, wall and business, by severity."""
    for clock in stopped:
        SLA_OUTCOMES.labels(clock.name, "met" if clock.met else "breached").inc()
        histogram = _TIME_TO.get(clock.name)
        if histogram is not None:
            histogram.labels(clock.severity.value, "wall").observe(clock.wall.total_seconds())
            histogram.labels(clock.severity.value, "business").observe(clock.business.total_seconds())


_TIME_TO = {"first_response": TIME_TO_FIRST_RESPONSE, "resolution": TIME_TO_RESOLUTION}
