"""Settings from RECOVERY_* environment variables; a bad value stops start-up naming the variable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.adapters.kafka.wire import MAX_TEXT_LENGTH
from service.adapters.postgres.data_keys import MasterKeys, parse_key_table, parse_master_keys
from service.adapters.policy_file import load_policy
from service.adapters.sla_policy_file import load_sla_policy
from service.domain.severity import Severity
from service.domain.signals import Channel, SignalKind
from service.domain.sla import DEFAULT_FIRST_RESPONSE, DEFAULT_RESOLUTION


def _master_keys(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        parse_key_table(value.get_secret_value())
    return value


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

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, comma-separated.")
    kafka_idempotent_producer: bool = Field(
        True,
        description="Producer idempotence. `false` for brokers without it; `recovery dev` sets it for the"
        " embedded Tansu.",
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`."
    )
    kafka_sasl_mechanism: str | None = Field(
        None, description="`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; unset: no SASL."
    )
    kafka_sasl_username: str | None = Field(None, description="The SASL user.")
    kafka_sasl_password: SecretStr | None = Field(None, description="The SASL password (a secret).")
    kafka_ssl_cafile: str | None = Field(
        None, description="CA file for the brokers' certificates; unset: the system CAs."
    )
    consumer_group: str = Field("recovery-loop", description="Consumer group of the signal consumers.")
    topic_partitions: int = Field(
        6, ge=1, description="Partitions of a topic the service creates because it is missing."
    )
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication of a topic the service creates because it is missing."
    )
    consume: bool = Field(True, description="This process consumes signals and billing results.")
    relay: bool = Field(
        True,
        description="This process publishes the outgoing feed and fires the SLA timers. With both `consume`"
        " and `relay` false a process serves only the HTTP API, and needs no Kafka.",
    )
    batch_max_records: int = Field(2000, ge=1, description="Most records in one consumed batch.")
    batch_timeout_ms: int = Field(100, ge=1, description="Longest wait to fill a batch, in milliseconds.")

    topic_complaint: str = Field("recovery.signals.complaint.v1", description="Complaint signals.")
    topic_nps: str = Field("recovery.signals.nps.v1", description="NPS signals.")
    topic_review: str = Field("recovery.signals.review.v1", description="Review signals.")
    topic_callback: str = Field("recovery.signals.callback.v1", description="Callback signals.")
    topic_ticket: str = Field("recovery.signals.ticket.v1", description="Ticket signals.")
    topic_dlq: str = Field("recovery.signals.dlq.v1", description="Dead letters.")
    topic_case_events: str = Field("recovery.case-events.v1", description="Outgoing case events.")
    topic_sla: str = Field("recovery.sla.v1", description="Outgoing SLA warnings and breaches.")
    topic_compensation_requests: str = Field(
        "recovery.compensation.requests.v1", description="Outgoing compensation requests to billing."
    )
    topic_compensation_results: str = Field(
        "recovery.compensation.results.v1", description="Billing's answers."
    )
    topic_trends: str = Field("recovery.trends.v1", description="Outgoing root-cause trends.")
    trend_threshold: int = Field(
        6, ge=1, description="Cases resolved with one root cause within the window that make a trend."
    )
    trend_window: WholeDays = Field(
        timedelta(days=90),
        description="The trend window: whole days, at least one (it is published in days).",
    )
    compensation_limits: dict[str, Limit | None] = Field(
        default_factory=lambda: {"agent": Decimal(50), "manager": Decimal(500), "owner": None},
        description="JSON: role -> limit in the case's currency (non-negative); null means unlimited.",
    )
    compensation_stake_factor: Decimal = Field(
        Decimal("1.5"),
        gt=0,
        allow_inf_nan=False,
        description="Above this multiple of the amount at stake, a compensation needs approval.",
    )
    max_text_length: int = Field(
        20_000,
        ge=1,
        le=MAX_TEXT_LENGTH,
        description=f"Longest customer free text a signal may carry, in characters (at most {MAX_TEXT_LENGTH:,});"
        " a longer one is dead-lettered.",
    )

    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/recovery"),
        description="PostgreSQL DSN (a secret). For TLS add `?sslmode=verify-full&sslrootcert=…`.",
    )
    database_pool_size: int = Field(10, ge=2, description="Connection pool size.")
    auto_migrate: bool = Field(
        True, description="Apply migrations at start-up (`recovery migrate` does it alone)."
    )

    http_host: str = Field("127.0.0.1", description="Where the HTTP API listens.")
    http_port: int = Field(8080, ge=0, le=65535, description="The HTTP API's port.")
    api_tokens: dict[str, ApiToken] = Field(
        default_factory=dict,
        description='JSON: token -> {"actor", "role"}, role `agent`, `manager` or `owner` (a secret).'
        " `recovery dev` makes one owner token when this is unset.",
    )
    data_keys: Annotated[SecretStr | None, AfterValidator(_master_keys)] = Field(
        None,
        description='JSON: master key id -> base64 of 32 random bytes (a secret), e.g. {"2025-01": "…"}: the'
        " keys that wrap each customer's data key, which seals their texts at rest. Keep every id that still"
        " wraps stored keys (start-up refuses otherwise, naming it). Required: the service refuses to start"
        " without it; `recovery dev` makes one.",
    )
    data_key_current: str | None = Field(
        None,
        description="Which id of RECOVERY_DATA_KEYS wraps new customer keys: rotate by adding a key and naming"
        " it here. Unset: the only key (required when there are several).",
    )
    publish_free_text: bool = Field(
        False,
        description="Publish personal free text (signal texts, summaries, notes, reasons) in the outgoing"
        " events. Off: those fields are null on every topic.",
    )
    console_session_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="The key that signs console sessions (a secret, at least 32 characters): give every replica"
        " the same one so a session survives a restart and works on each. Unset: a random key per process, so"
        " a restart signs everyone out and replicas refuse each other's sessions.",
    )

    sla_resolution: dict[Severity, PositiveDuration] = Field(
        default_factory=lambda: dict(DEFAULT_RESOLUTION),
        description="JSON: severity -> ISO 8601 duration, positive. Severities left out keep their default.",
    )
    sla_first_response: dict[Channel, PositiveDuration] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE),
        description="JSON: channel -> duration, positive. A signal without a channel gets email's.",
    )
    sla_warning_fraction: float = Field(
        0.75,
        gt=0,
        lt=1,
        description="Where in each window the pre-breach warning falls, in (0, 1). Without a policy file it"
        " applies to open cases too: a change moves their warnings. A policy file's clocks keep the warning"
        " point they were set with.",
    )
    sla_policy_file: Path | None = Field(
        None,
        description="The SLA policy (JSON, as `examples/sla-policy.json`): business calendars, the calendar of"
        " each clock, named clocks and a version. Unset: every clock counts 24x7.",
    )
    followup_after: PositiveDuration = Field(
        timedelta(hours=48), description="From resolution to the follow-up falling due."
    )
    reopen_window: PositiveDuration = Field(
        timedelta(days=14), description="A signal within this time after resolution reopens the case."
    )
    clock_skew: PositiveDuration = Field(
        timedelta(minutes=5),
        description="A signal time further than this ahead of its arrival starts the clocks at arrival.",
    )
    max_signal_age: PositiveDuration = Field(
        timedelta(days=30),
        description="A signal time older than this at arrival starts the clocks at arrival.",
    )
    policy_file: Path | None = Field(
        None,
        description="The classification policy (JSON, as the packaged `policy.json`); unset: the packaged one.",
    )

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
        description="JSON list: the root-cause taxonomy a resolution chooses from.",
    )
    log_level: str = Field("INFO", description="`DEBUG`, `INFO`, `WARNING` or `ERROR`.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="`json`: one JSON object per line; `console`: human-readable lines; `auto`: console when"
        " stdout is a terminal (as under `make run`), JSON otherwise (containers, files, pipes).",
    )

    @field_validator("policy_file", mode="after")
    @classmethod
    def _policy_file_holds_a_policy(cls, value: Path | None) -> Path | None:
        load_policy(value)  # refused at start-up, naming the field at fault, rather than at the first signal
        return value

    @field_validator("sla_policy_file", mode="after")
    @classmethod
    def _sla_policy_file_holds_a_policy(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_sla_policy(value)  # a bad file stops start-up with the loader's message, naming the field
        return value

    @field_validator("data_key_current", mode="after")
    @classmethod
    def _current_key_is_configured(cls, value: str | None, info: ValidationInfo) -> str | None:
        keys = info.data.get("data_keys")
        if keys is not None:
            parse_master_keys(keys.get_secret_value(), value)  # names RECOVERY_DATA_KEY_CURRENT when at fault
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


def master_keys(settings: Settings) -> MasterKeys | None:
    """The configured master keys (None when RECOVERY_DATA_KEYS is unset)."""
    if settings.data_keys is None:
        return None
    return parse_master_keys(settings.data_keys.get_secret_value(), settings.data_key_current)


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
