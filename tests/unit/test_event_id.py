"""Stored event ids: uuid5 of (stream, version), computed without uuid.uuid5 on the hot path."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from service.adapters.postgres.case_writes import _EVENT_NAMESPACE, event_id

STREAM_IDS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@given(STREAM_IDS, st.integers(1, 2**31 - 1))
def test_event_id_is_the_uuid5_of_stream_and_version(stream_id: str, version: int) -> None:
    expected = uuid.uuid5(_EVENT_NAMESPACE, f"{stream_id}/{version}")
    assert event_id(stream_id, version) == str(expected)
    assert uuid.UUID(event_id(stream_id, version)).version == 5
