"""Connection options shared by every Kafka client, and the producer."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from service.config import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers plus SASL/TLS when configured."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


MAX_RECORD_BYTES = 1_048_576
"""The largest record the producer sends (its max_request_size, aiokafka's default and the broker's usual
message.max.bytes): the relay parks an event whose record is larger instead of retrying it forever."""


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """acks=all always; idempotence is a setting because the embedded broker rejects its handshake."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=5,
        max_request_size=MAX_RECORD_BYTES,
    )


def faststream_security(settings: Settings) -> Any:
    """The same SASL/TLS settings in FastStream's terms."""
    from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

    tls = settings.kafka_security_protocol in ("SSL", "SASL_SSL")
    context = create_ssl_context(cafile=settings.kafka_ssl_cafile) if tls else None
    mechanism = settings.kafka_sasl_mechanism
    if not mechanism:
        return BaseSecurity(ssl_context=context, use_ssl=tls) if tls else None
    kinds = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    return kinds[mechanism](settings.kafka_sasl_username or "", password, ssl_context=context, use_ssl=tls)


class OffsetsAreOurs:
    """The consumer a FastStream message is given by our parsers (FastStream's `ConsumerProtocol`): it commits
    nothing and seeks nowhere, because the consumers commit their own offsets explicitly (signals: with the
    database transaction; billing results: after each answer lands)."""

    async def commit(self) -> None:
        return None

    def seek(self, partition: Any, offset: int) -> None:
        return None
