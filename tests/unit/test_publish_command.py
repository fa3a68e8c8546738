"""`recovery publish`: the record the flags describe, judged by the service's own decoder before it is sent."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from service.adapters.kafka.cloudevents import decode_signal
from service.config import Settings
from service.domain.signals import SignalKind
from service.entrypoints.publish import PublishRefused, add_commands, run, signal_record

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["publish", *argv])


def record_of(*argv: str, settings: Settings | None = None) -> tuple[object, object]:
    record = signal_record(parse(*argv), settings or Settings(), NOW)
    return record, decode_signal(record.value, record.headers, NOW, expected_kind=SignalKind(argv[0]))


def test_an_nps_signal_goes_to_its_topic_keyed_by_the_customer_at_the_time_now() -> None:
    record, signal = record_of(
        "nps", "--customer", "cust-42", "--field", "score=2", "--field", "channel=email"
    )
    assert record.topic == "recovery.signals.nps.v1" and record.key == b"cust-42"  # type: ignore[attr-defined]
    assert signal.customer_id == "cust-42" and signal.occurred_at == NOW  # type: ignore[attr-defined]
    assert signal.score == 2 and signal.channel.value == "email"  # type: ignore[attr-defined]
    assert dict(record.headers)["ce_type"] == b"recovery.signal.nps"  # type: ignore[attr-defined]


def test_structured_mode_sends_the_whole_event_as_one_json_value() -> None:
    record, signal = record_of(
        "complaint",
        "--customer",
        "cust-7",
        "--mode",
        "structured",
        "--id",
        "c-1",
        "--source",
        "/crm",
        "--field",
        "text=The engineer never came",
        "--field",
        'amount_at_stake={"amount": "120.00", "currency": "EUR"}',
    )
    event = json.loads(record.value)  # type: ignore[attr-defined]
    assert dict(record.headers) == {"content-type": b"application/cloudevents+json"}  # type: ignore[attr-defined]
    assert (event["id"], event["source"], event["data"]["text"]) == ("c-1", "/crm", "The engineer never came")
    assert str(signal.amount_at_stake.amount) == "120.00"  # type: ignore[attr-defined]


def test_a_given_time_is_kept() -> None:
    earlier = NOW - timedelta(hours=2)
    _, signal = record_of(
        "nps", "--customer", "c", "--field", "score=9", "--time", "2026-12-07T09:30:00+02:00"
    )
    assert signal.occurred_at == earlier  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["nps", "--customer", "c", "--field", "scroe=2"], "data.scroe: not a field of nps signals"),
        (["nps", "--customer", "c", "--field", "score=11"], "data.score"),
        (["nps", "--customer", "c", "--field", "score=two"], "data.score"),
        (["nps", "--customer", "c"], "data.score"),
        (["nps", "--customer", "c", "--field", "score=2", "--field", "score=3"], "data.score: given twice"),
        (["nps", "--customer", "c", "--field", "score"], "write NAME=VALUE"),
        (["nps", "--customer", "c", "--field", "customer_id=d"], "data.customer_id: not a field"),
        (["nps", "--customer", "", "--field", "score=2"], "--customer (ce_subject)"),
        (["nps", "--customer", "c", "--mode", "structured", "--id", "", "--field", "score=2"], "--id (id)"),
        (
            ["nps", "--customer", "c", "--field", "score=2", "--time", "yesterday"],
            "--time: must be an RFC 3339",
        ),
        (
            ["review", "--customer", "c", "--field", "rating=1", "--field", "platform=" + "p" * 2049],
            "data.platform",
        ),
    ],
)
def test_a_signal_the_service_would_refuse_is_refused_here_naming_the_field(
    argv: list[str], named: str
) -> None:
    with pytest.raises(PublishRefused, match=re.escape(named)):
        signal_record(parse(*argv), Settings(), NOW)


def test_free_text_longer_than_the_configured_bound_is_refused() -> None:
    with pytest.raises(PublishRefused, match="text_too_long"):
        signal_record(
            parse("complaint", "--customer", "c", "--field", "text=" + "x" * 101),
            Settings(max_text_length=100),
            NOW,
        )


def test_the_command_says_what_it_refused_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # The refusal comes before any connection: no broker listens on port 9, and none is asked.
    args = parse("nps", "--customer", "c", "--field", "score=12", "--bootstrap", "127.0.0.1:9")
    code = run(args, Settings())  # `recovery publish` itself runs in tests/e2e/test_readme.py
    err = capsys.readouterr().err
    assert code == 2 and "data.score" in err and "nothing was sent" in err, err
