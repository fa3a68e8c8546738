"""Settings from RECOVERY_* environment variables; a bad value stops start-up naming the variable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.adapters.kafka.wire import MAX_TEXT_LENGTH
from service.adapters.policy_file import load_policy
from service.domain.severity import Severity
from service.domain.signals import Channel, SignalKind
from service.domain.sla import DEFAULT_FIRST_RESPONSE, DEFAULT_RESOLUTION


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration, e.g. PT4H")
    return value


def _whole_days(value: timedelta) -> timedelta:
    if value < timedelta(days=1) or value % timedelta(days=1):
        raise ValueError("must be a whole number of days, at least one (e.g. P90D): it is published in days")
    return value


PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]
WholeDays = Annotated[timedelta, AfterValidator(_whole_days)]
Limit = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ApiToken(BaseModel):
    actor: str
    role: str = Field(pattern="^(agent|manager|owner)$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_idempotent_producer: bool = True
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    consumer_group: str = "recovery-loop"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    consume: bool = True  # consume signals and billing results in this process
    relay: bool = True  # publish the outgoing feed and fire SLA timers in this process
    batch_max_records: int = Field(default=2000, ge=1)
    batch_timeout_ms: int = Field(default=100, ge=1)

    topic_complaint: str = "recovery.signals.complaint.v1"
    topic_nps: str = "recovery.signals.nps.v1"
    topic_review: str = "recovery.signals.review.v1"
    topic_callback: str = "recovery.signals.callback.v1"
    topic_ticket: str = "recovery.signals.ticket.v1"
    topic_dlq: str = "recovery.signals.dlq.v1"
    topic_case_events: str = "recovery.case-events.v1"
    topic_sla: str = "recovery.sla.v1"
    topic_compensation_requests: str = "recovery.compensation.requests.v1"
    topic_compensation_results: str = "recovery.compensation.results.v1"
    topic_trends: str = "recovery.trends.v1"
    trend_threshold: int = Field(default=6, ge=1)
    trend_window: WholeDays = timedelta(days=90)
    compensation_limits: dict[str, Limit | None] = Field(
        default_factory=lambda: {"agent": Decimal(50), "manager": Decimal(500), "owner": None}
    )
    compensation_stake_factor: Decimal = Field(default=Decimal("1.5"), gt=0, allow_inf_nan=False)
    max_text_length: int = Field(default=20_000, ge=1, le=MAX_TEXT_LENGTH)

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/recovery")
    database_pool_size: int = Field(default=10, ge=2)
    auto_migrate: bool = True

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    api_tokens: dict[str, ApiToken] = Field(default_factory=dict)

    sla_resolution: dict[Severity, PositiveDuration] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    sla_first_response: dict[Channel, PositiveDuration] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE)
    )
    sla_warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    followup_after: PositiveDuration = timedelta(hours=48)
    reopen_window: PositiveDuration = timedelta(days=14)
    # a signal's time starts its clocks unless it is this far ahead of arrival or older than this: then arrival
    clock_skew: PositiveDuration = timedelta(minutes=5)
    max_signal_age: PositiveDuration = timedelta(days=30)
    policy_file: Path | None = None  # the classification policy (JSON); None: the packaged one

    root_causes: list[str] = Field(
        default_factory=lambda: [
            "scheduling",
            "technician_skill",
            "parts_quality",
            "product_design",
            "communication_gap",
            "billing_process",
            "process_gap",
            "third_party",
            "customer_expectation",
            "other",
        ],
        min_length=1,
    )
    log_level: str = "INFO"

    @field_validator("policy_file", mode="after")
    @classmethod
    def _policy_file_holds_a_policy(cls, value: Path | None) -> Path | None:
        load_policy(value)  # refused at start-up, naming the field at fault, rather than at the first signal
        return value

    @field_validator("sla_resolution", mode="after")
    @classmethod
    def _keep_unset_severities(cls, value: dict[Severity, timedelta]) -> dict[Severity, timedelta]:
        return {**DEFAULT_RESOLUTION, **value}

    @field_validator("sla_first_response", mode="after")
    @classmethod
    def _keep_unset_channels(cls, value: dict[Channel, timedelta]) -> dict[Channel, timedelta]:
        return {**DEFAULT_FIRST_RESPONSE, **value}

    def all_topics(self) -> list[str]:
        """Every topic the service reads or writes."""
        return [
            *self.signal_topics(),
            self.topic_dlq,
            self.topic_case_events,
            self.topic_sla,
            self.topic_compensation_requests,
            self.topic_compensation_results,
            self.topic_trends,
        ]

    def signal_topics(self) -> dict[str, SignalKind]:
        return {
            self.topic_complaint: SignalKind.COMPLAINT,
            self.topic_nps: SignalKind.NPS,
            self.topic_review: SignalKind.REVIEW,
            self.topic_callback: SignalKind.CALLBACK,
            self.topic_ticket: SignalKind.TICKET,
        }


def load_settings() -> Settings:
    """Build settings once; a ValidationError here names the RECOVERY_ variable at fault."""
    return Settings()


def describe_error(error: Exception) -> str:
    """Turn a settings ValidationError into lines that name the environment variable."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    lines = []
    for e in error.errors(include_input=False):
        name = "RECOVERY_" + str(e["loc"][0]).upper() if e["loc"] else "RECOVERY_*"
        lines.append(f"invalid {name}: {e['msg']}")
    return "\n".join(lines)
