"""Settings from RECOVERY_* environment variables; a bad value stops start-up naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.adapters.compensation_policy_file import load_compensation_limits
from service.adapters.incident_policy_file import load_incident_policy
from service.adapters.kafka.wire import MAX_TEXT_LENGTH
from service.adapters.policy_file import load_policy
from service.adapters.postgres.data_keys import (
    NO_DATA_KEYS,
    Keyring,
    MissingMasterKey,
    parse_key_table,
    parse_master_keys,
)
from service.adapters.sla_policy_file import load_sla_policy
from service.api_tokens import ApiTokens, weakness_of
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


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
SecurityProtocol = Annotated[Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)]
SaslMechanism = Annotated[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], BeforeValidator(_upper)]
WholeDays = Annotated[timedelta, AfterValidator(_whole_days)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore", hide_input_in_errors=True)

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, comma-separated.")
    kafka_idempotent_producer: bool = Field(
        True,
        description="Producer idempotence. `false` for brokers without it; `recovery dev` sets it for the"
        " embedded Tansu.",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`."
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
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
    dlq_retention: PositiveDuration = Field(
        timedelta(days=14),
        description="How long the dead-letter topic keeps a record (its retention.ms, set when the service creates"
        " the topic; an existing topic keeps its own): dead letters hold customers' words.",
    )
    topic_case_events: str = Field("recovery.case-events.v1", description="Outgoing case events.")
    topic_sla: str = Field("recovery.sla.v1", description="Outgoing SLA warnings and breaches.")
    topic_compensation_requests: str = Field(
        "recovery.compensation.requests.v1", description="Outgoing compensation requests to billing."
    )
    topic_compensation_results: str = Field(
        "recovery.compensation.results.v1", description="Billing's answers."
    )
    topic_trends: str = Field("recovery.trends.v1", description="Outgoing root-cause trends.")
    topic_incidents: str = Field(
        "recovery.incidents.v1", description="Outgoing incident events (proposed, declared), keyed by incident id."
    )
    trend_threshold: int = Field(
        6, ge=1, description="Cases resolved with one root cause within the window that make a trend."
    )
    trend_window: WholeDays = Field(
        timedelta(days=90),
        description="The trend window: whole days, at least one (it is published in days).",
    )
    incident_policy_file: Path | None = Field(
        None,
        description="The incident policy (JSON, as `examples/incident-policy.json`): the surge rules that declare"
        " or propose an incident (group by service, region, category or signal kind; a window; a floor of distinct"
        " customers; a multiple of the scope's baseline). Unset: one rule, 20 distinct customers of one service"
        " and region within 15 minutes at 5 times their baseline, declared (docs/cx-leads.md).",
    )
    compensation_policy_file: Path | None = Field(
        None,
        description="The compensation limits per currency (JSON, as `examples/compensation-policy.json`): per role"
        " and case (by category and tier), per customer across cases in a window, per actor in a day, the stake"
        " factor. Unset: the built-in table (docs/cx-leads.md). A currency it does not name needs approval.",
    )
    compensation_limits: str | None = Field(
        None,
        description="Removed: limits are per currency in `RECOVERY_COMPENSATION_POLICY_FILE`; set, it stops"
        " start-up (a limit without a currency let 50 of any currency through).",
    )
    compensation_stake_factor: str | None = Field(
        None,
        description="Removed: `stake_factor` in `RECOVERY_COMPENSATION_POLICY_FILE`; set, it stops start-up.",
    )
    billing_sources: list[str] | None = Field(
        None,
        description="JSON list of the CloudEvents `source` values billing answers from; an answer from another"
        " source is dead-lettered. Unset: every source is trusted, with a warning at start-up.",
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
    api_tokens: ApiTokens = Field(
        default_factory=ApiTokens,
        description='JSON: token -> {"actor", "role"}, role `agent`, `manager` or `owner` (a secret). Each token'
        ' at least 32 characters; a placeholder (anything containing "change", one repeated character) stops'
        " start-up. `recovery dev` makes one owner token when this is unset.",
    )
    auth_failures_per_minute: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Failed authentications (API 401s and console sign-ins together) one client address may make"
        " in a burst, and again per minute after it; beyond, 429 with Retry-After.",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated addresses or networks of the proxies whose X-Forwarded-For and"
        " X-Forwarded-Proto are believed (uvicorn's `forwarded_allow_ips`; `*` for any): the client address"
        " throttling counts is then the proxy's client's.",
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
        description="The console's key (a secret, at least 32 characters), the same on every replica: it keys the"
        " stored digests of session ids and the sign-in form's anti-forgery token. Required when"
        " `recovery serve` listens on an address other than loopback; unset on loopback: a random key per"
        " process, so a restart signs everyone out.",
    )
    console_cookie_secure: bool = Field(
        True,
        description="The session cookie is `Secure` (sent over HTTPS only) and responses carry"
        " Strict-Transport-Security. `false` only on loopback over plain HTTP (`recovery dev` sets it);"
        " `recovery serve` refuses it on any other address.",
    )
    console_idle_timeout: PositiveDuration = Field(
        timedelta(minutes=30),
        description="A console session unused this long ends (each request extends it).",
    )
    console_session_lifetime: PositiveDuration = Field(
        timedelta(hours=12), description="A console session ends this long after sign-in, however used."
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
    sla_policy_retry_interval: PositiveDuration = Field(
        timedelta(minutes=5),
        description="How soon a policy apply that failed, or left open cases uncorrected, is tried again (until"
        " it succeeds; meanwhile `recovery_sla_policy_unapplied` is 1 and /healthz names it).",
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
    log_level: LogLevel = Field("INFO", description="`DEBUG`, `INFO`, `WARNING` or `ERROR`.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="`json`: one JSON object per line; `console`: human-readable lines; `auto`: console when"
        " stdout is a terminal (as under `make run`), JSON otherwise (containers, files, pipes).",
    )

    @field_validator("console_session_key", mode="after")
    @classmethod
    def _console_key_is_a_secret(cls, value: SecretStr | None) -> SecretStr | None:
        weakness = None if value is None else weakness_of(value.get_secret_value())
        if weakness is not None:  # the message never quotes the key
            raise ValueError(f"the key {weakness}")
        return value

    @field_validator("policy_file", mode="after")
    @classmethod
    def _policy_file_holds_a_policy(cls, value: Path | None) -> Path | None:
        load_policy(value)  # refused at start-up, naming the field at fault, rather than at the first signal
        return value

    @field_validator("incident_policy_file", mode="after")
    @classmethod
    def _incident_policy_file_holds_a_policy(cls, value: Path | None) -> Path | None:
        load_incident_policy(value)  # a bad file stops start-up with the loader's message, naming the field
        return value

    @field_validator("compensation_policy_file", mode="after")
    @classmethod
    def _compensation_policy_file_holds_limits(cls, value: Path | None) -> Path | None:
        load_compensation_limits(
            value
        )  # a bad file stops start-up with the loader's message, naming the field
        return value

    @field_validator("compensation_limits", "compensation_stake_factor", mode="after")
    @classmethod
    def _removed(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "is no longer read: compensation limits are per currency in RECOVERY_COMPENSATION_POLICY_FILE"
                " (see examples/compensation-policy.json and docs/cx-leads.md); unset it"
            )
        return None

    @field_validator("billing_sources", mode="after")
    @classmethod
    def _sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not s.strip() or len(s) > 256 for s in value)):
            raise ValueError(
                "must be a JSON list of one or more non-empty `source` values of at most 256 characters"
            )
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
            self.topic_incidents,
        ]

    def signal_topics(self) -> dict[str, SignalKind]:
        return {
            self.topic_complaint: SignalKind.COMPLAINT,
            self.topic_nps: SignalKind.NPS,
            self.topic_review: SignalKind.REVIEW,
            self.topic_callback: SignalKind.CALLBACK,
            self.topic_ticket: SignalKind.TICKET,
        }


def keyring_of(settings: Settings) -> Keyring:
    """The customers' data keys under the configured master keys; MissingMasterKey, naming RECOVERY_DATA_KEYS,
    when it is unset."""
    if settings.data_keys is None:
        raise MissingMasterKey(NO_DATA_KEYS)
    return Keyring(parse_master_keys(settings.data_keys.get_secret_value(), settings.data_key_current))




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
