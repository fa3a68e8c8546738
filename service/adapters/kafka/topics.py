"""Create the topics the service uses when they are missing; existing ones are left as they are."""

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
            new = [NewTopic(n, settings.topic_partitions, settings.topic_replication_factor) for n in missing]
            with suppress(TopicAlreadyExistsError):  # another instance created them first
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
