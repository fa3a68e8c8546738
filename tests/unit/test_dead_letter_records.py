"""What a dead letter's headers say, which ones a filter takes, and what a replay sends (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from service.adapters.kafka.cloudevents import encode_binary, encode_structured
from service.adapters.kafka.dlq import (
    SKIP_COPY,
    SKIP_NOT_A_DEAD_LETTER,
    SKIP_REFERENCE,
    SKIP_UNKNOWN_TOPIC,
    DeadLetter,
    DeadLetterFilter,
    replay,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVENT: dict[str, Any] = {
    "id": "s-1",
    "source": "up",
    "type": "recovery.signal.nps",
    "subject": "c",
    "time": AT,
    "data": {},
}


def letter(
    origin: tuple[str, int, int] | None = ("nps", 0, 5),
    reason: str = "time_out_of_range: ce_time",
    value: bytes | None = b"{}",
    headers: list[tuple[str, bytes | None]] | None = None,
    at: datetime = AT,
    extra: Sequence[tuple[str, bytes | None]] = (),
) -> DeadLetter:
    original = headers if headers is not None else list(encode_binary(**EVENT)[0])
    dlq: list[tuple[str, bytes | None]] = [("dlq_reason", reason.encode())]
    if origin is not None:
        dlq += [("dlq_topic", origin[0].encode()), ("dlq_partition", b"%d" % origin[1])]
        dlq += [("dlq_offset", b"%d" % origin[2])]
    return DeadLetter(0, 0, at, b"c", value, tuple([*original, *dlq, *extra]))


def test_identity_reason_and_original_headers_come_from_the_dlq_headers() -> None:
    dead = letter(headers=[("ce_id", b"s-1"), ("x", None)])
    assert dead.identity == ("nps", 0, 5)
    assert dead.reason == "time_out_of_range: ce_time"
    assert dead.original_headers() == [("ce_id", b"s-1"), ("x", None)]
    assert letter(origin=None).identity is None


def test_the_cloudevent_ids_are_read_from_binary_headers_or_a_structured_body_and_never_fail() -> None:
    assert letter().cloudevent() == ("up", "s-1", "recovery.signal.nps")
    headers, body = encode_structured(**EVENT)
    assert letter(headers=list(headers), value=body).cloudevent() == ("up", "s-1", "recovery.signal.nps")
    for junk in (b"[" * 100_000, b"\xff", b"[]", b'{"id": 7}'):
        assert letter(headers=list(headers), value=junk).cloudevent() == (None, None, None)


def test_a_filter_takes_a_reason_substring_the_original_topic_and_a_half_open_time_range() -> None:
    dead = letter()
    assert DeadLetterFilter(reason="OUT_OF").matches(dead)
    assert not DeadLetterFilter(reason="processing").matches(dead)
    assert DeadLetterFilter(topic="nps").matches(dead) and not DeadLetterFilter(topic="np").matches(dead)
    assert not DeadLetterFilter(topic="nps").matches(letter(origin=None))
    assert DeadLetterFilter(since=AT, until=datetime(2024, 5, 2, tzinfo=UTC)).matches(dead)
    assert not DeadLetterFilter(until=AT).matches(dead)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[Any]]] = []
        self.unacknowledged: list[asyncio.Future[None]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None, headers: list[Any]) -> Any:
        self.sent.append((topic, value, key, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, None)
        self.unacknowledged.append(future)
        return future


async def stream(*letters: DeadLetter) -> AsyncIterator[DeadLetter]:
    for one in letters:
        yield one


async def test_replay_sends_each_dead_letter_once_to_its_topic_and_says_why_it_skips_the_others() -> None:
    producer = FakeProducer()
    reference = letter(("nps", 0, 6), value=None, extra=[("dlq_reference", b"true")])
    letters = [letter(), letter(), reference, letter(("theirs", 0, 1)), letter(origin=None)]
    report = await replay(stream(*letters), producer, ["nps"], in_flight=1)
    assert report.replayed == 1
    assert report.skipped == {
        SKIP_COPY: 1,
        SKIP_REFERENCE: 1,
        SKIP_UNKNOWN_TOPIC: 1,
        SKIP_NOT_A_DEAD_LETTER: 1,
    }
    assert producer.sent == [("nps", b"{}", b"c", list(encode_binary(**EVENT)[0]))]
    assert all(f.done() for f in producer.unacknowledged)


async def test_a_dry_run_sends_nothing_and_counts_what_it_would_send() -> None:
    report = await replay(stream(letter(), letter(("nps", 1, 1))), None, ["nps"])
    assert (report.replayed, sum(report.skipped.values())) == (2, 0)
