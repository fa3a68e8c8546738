"""Settings from RECOVERY_* environment variables; a bad value stops start-up naming the variable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.domain.severity import Severity
from service.domain.signals import Channel, SignalKind
from service.domain.sla import DEFAULT_FIRST_RESPONSE, DEFAULT_RESOLUTION


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
    trend_window: timedelta = timedelta(days=90)
    compensation_limits: dict[str, Decimal | None] = Field(
        default_factory=lambda: {"agent": Decimal(50), "manager": Decimal(500), "owner": None}
    )
    compensation_stake_factor: Decimal = Field(default=Decimal("1.5"), gt=0)

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/recovery")
    database_pool_size: int = Field(default=10, ge=2)
    auto_migrate: bool = True

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    api_tokens: dict[str, ApiToken] = Field(default_factory=dict)

    sla_resolution: dict[Severity, timedelta] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    sla_first_response: dict[Channel, timedelta] = Field(default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE))
    sla_warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    followup_after: timedelta = timedelta(hours=48)
    reopen_window: timedelta = timedelta(days=14)

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

    @field_validator("sla_resolution", mode="after")
    @classmethod
    def _keep_unset_severities(cls, value: dict[Severity, timedelta]) -> dict[Severity, timedelta]:
        return {**DEFAULT_RESOLUTION, **value}

    @field_validator("sla_first_response", mode="after")
    @classmethod
    def _keep_unset_channels(cls, value: dict[Channel, timedelta]) -> dict[Channel, timedelta]:
        return {**DEFAULT_FIRST_RESPONSE, **value}

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
