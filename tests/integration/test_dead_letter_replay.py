"""`recovery dlq list|show|replay` as an operator runs it (a process), against the real broker and database."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

import service.bootstrap as bootstrap
from service.adapters.kafka.dlq import DeadLetter, DeadLetterReader
from service.adapters.kafka.topics import ensure_topics
from service.app.intake import IntakeResult
from service.bootstrap import Service
from service.config import Settings
from service.domain.signals import Signal, SignalKind
from tests.support import eventually, publish, settings_env, signal_event, wait_until_ready

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def dlq_cli(settings: Settings, *args: str) -> Ran:
    """`recovery dlq …` with the test's settings; a subprocess that leaves the event loop (and a service) running."""
    env = {**os.environ, **settings_env(settings), "RECOVERY_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "dlq",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def records_on(settings: Settings, topic: str) -> list[DeadLetter]:
    """Every record of a topic up to its ends (the same reader as `recovery dlq`, pointed elsewhere)."""
    async with DeadLetterReader(settings.model_copy(update={"topic_dlq": topic})) as reader:
        return [r async for r in reader.letters()]


def dlq_headers(topic: str, partition: int, offset: int, reason: str) -> Headers:
    return [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
    ]


def millis(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass(frozen=True)
class Letters:
    nps: str
    complaint: str
    a_headers: Headers
    a_value: bytes


@pytest.fixture
async def letters(settings: Settings, producer: AIOKafkaProducer, pool: asyncpg.Pool) -> AsyncIterator[Letters]:
    """Dead letters as the service writes them: A (binary, NPS topic, 2020), B (structured, complaint, 2021),
    C (a reference, complaint, 2022); each value holds customer free text that must never be listed."""
    await ensure_topics(settings, settings.all_topics())
    topics = {kind: topic for topic, kind in settings.signal_topics().items()}
    nps, complaint = topics[SignalKind.NPS], topics[SignalKind.COMPLAINT]
    a_headers, a_value = signal_event(
        SignalKind.NPS, "cust-a", {"score": 1, "text": "SECRET-A"}, signal_id="a1", source="up-a"
    )
    a_headers = [*a_headers, ("x-trace", b"kept")]
    b_headers, b_value = signal_event(
        SignalKind.COMPLAINT,
        "cust-b",
        {"text": "SECRET-B"},
        signal_id="b1",
        source="up-b",
        structured=True,
    )
    sent = [
        (
            a_value,
            [*a_headers, *dlq_headers(nps, 1, 7, "time_out_of_range: ce_time")],
            "2020-01-01T00:00:00+00:00",
        ),
        (
            b_value,
            [*b_headers, *dlq_headers(complaint, 0, 3, "processing_failed: ZeroDivisionError")],
            "2021-01-01T00:00:00+00:00",
        ),
        (
            None,
            [*dlq_headers(complaint, 2, 9, "text_too_long: data.text"), ("dlq_reference", b"true")],
            "2022-01-01T00:00:00+00:00",
        ),
    ]
    for value, headers, at in sent:
        await producer.send_and_wait(
            settings.topic_dlq, value, key=b"cust", headers=headers, timestamp_ms=millis(at)
        )
    yield Letters(nps, complaint, a_headers, a_value)


async def test_list_shows_one_line_per_dead_letter_and_never_a_value(
    settings: Settings, letters: Letters
) -> None:
    ran = await dlq_cli(settings, "list")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        [f"{letters.nps}/1/7", f"{letters.complaint}/0/3", f"{letters.complaint}/2/9"]
    )
    by_id = {line.split()[0]: line for line in lines}
    assert "source=up-a id=a1 type=recovery.signal.nps" in by_id[f"{letters.nps}/1/7"]
    assert "2020-01-01T00:00:00+00:00" in by_id[f"{letters.nps}/1/7"]
    assert "source=up-b id=b1 type=recovery.signal.complaint" in by_id[f"{letters.complaint}/0/3"]
    assert by_id[f"{letters.complaint}/2/9"].endswith("reference")
    assert not by_id[f"{letters.nps}/1/7"].endswith("reference")
    assert "SECRET" not in ran.out + ran.err


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--reason", "PROCESSING_failed"], ["complaint/0/3"]),
        (["--topic", "nps"], ["nps/1/7"]),
        (["--since", "2020-06-01T00:00:00Z", "--until", "2022-01-01T00:00:00Z"], ["complaint/0/3"]),
        (["--since", "2021-01-01T00:00:00+00:00"], ["complaint/0/3", "complaint/2/9"]),
        (["--limit", "1", "--topic", "complaint"], ["complaint/0/3"]),
    ],
)
async def test_list_filters_by_reason_original_topic_and_dead_letter_time(
    settings: Settings, letters: Letters, filters: list[str], expected: list[str]
) -> None:
    names = {"nps": letters.nps, "complaint": letters.complaint}
    filters = [names.get(f, f) for f in filters]
    ran = await dlq_cli(settings, "list", *filters)
    assert ran.code == 0, ran.err
    shown = sorted(line.split()[0] for line in ran.out.splitlines())
    wanted = sorted(f"{names[e.split('/')[0]]}/{e.split('/', 1)[1]}" for e in expected)
    assert shown == wanted


async def test_show_prints_the_headers_and_the_value_only_when_asked(
    settings: Settings, letters: Letters
) -> None:
    plain = await dlq_cli(settings, "show", f"{letters.nps}/1/7")
    assert plain.code == 0, plain.err
    assert "dlq_reason: time_out_of_range: ce_time" in plain.out
    assert "ce_id: a1" in plain.out and "x-trace: kept" in plain.out
    assert "SECRET" not in plain.out
    asked = await dlq_cli(settings, "show", letters.nps, "1", "7", "--value")
    assert asked.code == 0, asked.err
    assert asked.out.rstrip("\n").endswith(letters.a_value.decode())
    missing = await dlq_cli(settings, "show", f"{letters.nps}/1/8")
    assert missing.code == 1 and "no dead letter" in missing.err


async def test_a_dry_run_or_an_unconfirmed_replay_publishes_nothing(
    settings: Settings, letters: Letters
) -> None:
    dry = await dlq_cli(settings, "replay", "--dry-run")
    assert dry.code == 0, dry.err
    assert "would replay: 2; skipped: 1" in dry.out
    assert f"would replay {letters.nps}/1/7" in dry.out
    assert f"skipped {letters.complaint}/2/9: reference" in dry.out
    unconfirmed = await dlq_cli(settings, "replay")  # stdin is not a terminal: no --yes, no replay
    assert unconfirmed.code == 2, unconfirmed.err
    assert await records_on(settings, letters.nps) == []
    assert await records_on(settings, letters.complaint) == []


async def test_replay_publishes_the_original_record_once_without_dlq_headers_and_skips_references(
    settings: Settings, letters: Letters, producer: AIOKafkaProducer
) -> None:
    # the same dead letter again (a crash between sending it and committing), and one from a topic not ours
    copy = [*letters.a_headers, *dlq_headers(letters.nps, 1, 7, "time_out_of_range: ce_time")]
    await producer.send_and_wait(settings.topic_dlq, letters.a_value, key=b"cust", headers=copy)
    elsewhere = [*letters.a_headers, *dlq_headers("someone-elses-topic", 0, 1, "processing_failed: X")]
    await producer.send_and_wait(settings.topic_dlq, letters.a_value, key=b"cust", headers=elsewhere)

    ran = await dlq_cli(settings, "replay", "--yes", "--quiet")
    assert ran.code == 0, ran.err
    assert "replayed (acknowledged by the broker): 2; skipped: 3" in ran.out
    for why in ("reference:", "copy:", "not one the service consumes"):
        assert why in ran.out
    (nps,) = await records_on(settings, letters.nps)
    assert (nps.key, nps.value, list(nps.headers)) == (b"cust", letters.a_value, letters.a_headers)
    (complaint,) = await records_on(settings, letters.complaint)
    assert complaint.cloudevent() == ("up-b", "b1", "recovery.signal.complaint")
    assert list(complaint.headers) == [("content-type", b"application/cloudevents+json")]


async def test_a_dead_lettered_signal_is_replayed_after_the_fix_into_one_case_and_a_second_replay_changes_nothing(
    settings: Settings,
    producer: AIOKafkaProducer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_apply = bootstrap.apply_signals

    async def buggy(signals: list[Signal], *args: object, **kwargs: object) -> IntakeResult:
        if any(s.id.startswith("poison") for s in signals):
            raise ZeroDivisionError("a bug this signal triggers")
        return await real_apply(signals, *args, **kwargs)  # type: ignore[arg-type]

    topic = next(t for t, k in settings.signal_topics().items() if k is SignalKind.COMPLAINT)
    customer, signal_id = f"cust-{uuid.uuid4().hex[:6]}", f"poison-{uuid.uuid4().hex[:6]}"
    event = signal_event(
        SignalKind.COMPLAINT, customer, {"text": "Boiler still leaking."}, signal_id=signal_id
    )

    monkeypatch.setattr(bootstrap, "apply_signals", buggy)
    broken = Service(settings)
    await broken.start()
    try:
        await wait_until_ready(broken)
        await publish(producer, topic, customer, event)

        async def dead_lettered() -> list[DeadLetter]:
            return [
                r for r in await records_on(settings, settings.topic_dlq) if r.header("ce_id") == signal_id
            ]

        (letter,) = await eventually(dead_lettered, what="the signal on the dead-letter topic")
        assert letter.reason == "processing_failed: ZeroDivisionError"
    finally:
        await broken.stop()
    monkeypatch.undo()

    fixed = Service(settings)
    await fixed.start()
    conn = await asyncpg.connect(database_url)
    try:
        await wait_until_ready(fixed)
        assert await _signals(conn, signal_id) == 0 and await _cases(conn, customer) == 0
        first = await dlq_cli(settings, "replay", "--yes", "--reason", "processing_failed")
        assert first.code == 0, first.err
        assert "replayed (acknowledged by the broker): 1;" in first.out

        async def a_case() -> bool:
            return await _signals(conn, signal_id) == 1 and await _cases(conn, customer) == 1

        await eventually(a_case, what="the replayed signal applied as one case")
        events = await _events(conn, customer)

        second = await dlq_cli(settings, "replay", "--yes", "--reason", "processing_failed")
        assert second.code == 0, second.err
        assert "replayed (acknowledged by the broker): 1;" in second.out
        # a later record under the same key lands on the same partition: once it is applied, so is the replay
        marker = signal_event(
            SignalKind.COMPLAINT, f"{customer}-marker", {"text": "after"}, signal_id="marker"
        )
        await publish(producer, topic, customer, marker)

        async def marker_applied() -> bool:
            return await _signals(conn, "marker") == 1

        await eventually(marker_applied, what="the marker behind the second replay applied")
        assert await _signals(conn, signal_id) == 1
        assert await _cases(conn, customer) == 1
        assert await _events(conn, customer) == events
        assert fixed.alive(), fixed.failures()
    finally:
        await conn.close()
        await fixed.stop()


async def _signals(conn: asyncpg.Connection, signal_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM signal_log WHERE signal_id = $1", signal_id))


async def _cases(conn: asyncpg.Connection, customer: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM cases WHERE customer_id = $1", customer))


async def _events(conn: asyncpg.Connection, customer: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM events e JOIN cases c ON c.case_id = e.stream_id WHERE c.customer_id = $1",
            customer,
        )
    )
