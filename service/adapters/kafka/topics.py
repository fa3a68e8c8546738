"""Create the topics the service uses when they are missing; existing ones are left as they are.

The dead-letter topic is created with a retention (RECOVERY_DLQ_RETENTION): its records keep the signals as they
came, customers' words included, so they must not be kept for ever.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.adapters.kafka.client import client_options
from service.config import Settings


async def ensure_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """Returns the topics created now."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if missing:
            new = [new_topic(settings, n) for n in missing]
            with suppress(TopicAlreadyExistsError):  # another instance created them first
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()


def new_topic(settings: Settings, name: str) -> NewTopic:
    configs = {}
    if name == settings.topic_dlq:
        configs["retention.ms"] = str(int(settings.dlq_retention.total_seconds() * 1000))
    return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, topic_configs=configs)
