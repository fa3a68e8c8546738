"""The topics the service creates: the broker takes the dead-letter topic's retention; existing topics stay."""

from __future__ import annotations

from datetime import timedelta

from service.adapters.kafka.topics import ensure_topics, new_topic
from service.config import Settings
from tests.infra import unique


async def test_the_dead_letter_topic_is_created_with_its_retention_and_an_existing_one_is_left_alone(
    settings: Settings,
) -> None:
    mine = settings.model_copy(
        update={"topic_dlq": unique("dlq"), "topic_nps": unique("nps"), "dlq_retention": timedelta(days=3)}
    )
    assert new_topic(mine, mine.topic_dlq).topic_configs == {"retention.ms": str(3 * 24 * 3600 * 1000)}
    assert new_topic(mine, mine.topic_nps).topic_configs == {}  # the broker's default
    created = await ensure_topics(mine, [mine.topic_dlq, mine.topic_nps])
    assert sorted(created) == sorted([mine.topic_dlq, mine.topic_nps])
    assert await ensure_topics(mine, [mine.topic_dlq, mine.topic_nps]) == []
