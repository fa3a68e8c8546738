"""Trace context in and out: strict W3C checks, lenient decoding (never a dead letter), the outgoing header,
and the OTEL_* switch that leaves tracing off unless an exporter is named."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.trace import NoOpTracer

from service.adapters.kafka.cloudevents import decode_signal, encode_binary, encode_structured
from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.adapters.kafka.results import SETTLED, decode_result
from service.app.ports import LoggedEvent
from service.domain.signals import SignalKind
from service.tracing import (
    MAX_LINKS,
    TracingConfigError,
    configure_tracing,
    links_to,
    shutdown_tracing,
    span_context,
    traceparent_of,
    tracer,
    tracing_on,
    use_provider,
    valid_traceparent,
    valid_tracestate,
)

W3C_EXAMPLE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOPICS = OutgoingTopics("case-events", "sla")


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (W3C_EXAMPLE, W3C_EXAMPLE),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        ),
        # a later version is read as its version-00 fields
        ("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", W3C_EXAMPLE),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),  # version ff is invalid
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),  # no trace
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),  # no parent
        ("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", None),  # uppercase hex
        (W3C_EXAMPLE + "-extra", None),  # extra fields, longer than 55
        (W3C_EXAMPLE[:-1], None),
        (" " + W3C_EXAMPLE[1:], None),
        ("", None),
        (42, None),
        (None, None),
    ],
)
def test_a_traceparent_is_valid_only_in_the_w3c_form(given: object, read: str | None) -> None:
    assert valid_traceparent(given) == read


def test_a_tracestate_is_kept_when_valid_and_dropped_whole_when_not() -> None:
    assert (
        valid_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,")
        == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    )
    assert valid_tracestate("tenant@vendor=x") == "tenant@vendor=x"
    assert valid_tracestate("Upper=1") is None
    assert valid_tracestate("novalue") is None
    assert valid_tracestate("a=" + "x" * 511) is None  # longer than 512
    assert valid_tracestate(",".join(f"k{i}=v" for i in range(33))) is None  # more than 32 members
    assert valid_tracestate(" , ") is None


def test_span_contexts_and_traceparents_round_trip() -> None:
    context = span_context(W3C_EXAMPLE, "rojo=1")
    assert context.is_remote and context.trace_state.get("rojo") == "1"
    assert traceparent_of(context) == W3C_EXAMPLE


def test_links_are_one_per_trace_context_and_bounded() -> None:
    parents = [f"00-{i + 1:032x}-{i + 1:016x}-01" for i in range(MAX_LINKS + 10)]
    links = links_to([(None, None), (parents[0], None), (parents[0], None), *((p, None) for p in parents)])
    assert len(links) == MAX_LINKS
    assert [traceparent_of(link.context) for link in links] == parents[:MAX_LINKS]


def _binary(headers_extra: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], bytes]:
    headers, body = encode_binary(
        id="s-1",
        source="crm",
        type="recovery.signal.nps",
        subject="c-1",
        time=NOW,
        data={"customer_id": "c-1", "score": 2},
    )
    return headers + headers_extra, body


def test_a_binary_signal_keeps_its_ce_traceparent_and_tracestate() -> None:
    headers, body = _binary([("ce_traceparent", W3C_EXAMPLE.encode()), ("ce_tracestate", b"rojo=1")])
    signal = decode_signal(body, headers, NOW, SignalKind.NPS)
    assert (signal.traceparent, signal.tracestate) == (W3C_EXAMPLE, "rojo=1")


@pytest.mark.parametrize(
    "extra",
    [
        [("ce_traceparent", b"not-a-traceparent")],
        [("ce_traceparent", b"\xff\xfe")],  # not UTF-8
        [("ce_traceparent", W3C_EXAMPLE.encode()), ("ce_traceparent", W3C_EXAMPLE.encode())],  # repeated
        [("ce_traceparent", ("00-" + "a" * 200).encode())],
    ],
)
def test_an_invalid_ce_traceparent_is_ignored_and_the_signal_accepted(extra: list[tuple[str, bytes]]) -> None:
    headers, body = _binary([*extra, ("ce_tracestate", b"rojo=1")])
    signal = decode_signal(body, headers, NOW, SignalKind.NPS)
    assert signal.id == "s-1" and signal.traceparent is None and signal.tracestate is None


def test_a_structured_signal_keeps_a_valid_traceparent_attribute_and_ignores_an_invalid_one() -> None:
    headers, body = encode_structured(
        id="s-2",
        source="crm",
        type="recovery.signal.nps",
        subject="c-1",
        time=NOW,
        data={"customer_id": "c-1", "score": 2},
    )
    event = json.loads(body)
    traced = json.dumps({**event, "traceparent": W3C_EXAMPLE, "tracestate": "Bad State"}).encode()
    signal = decode_signal(traced, headers, NOW, SignalKind.NPS)
    assert (signal.traceparent, signal.tracestate) == (W3C_EXAMPLE, None)
    for invalid in ("00-xyz", 7, None, ["x"]):
        odd = json.dumps({**event, "traceparent": invalid}).encode()
        assert decode_signal(odd, headers, NOW, SignalKind.NPS).traceparent is None


def _logged(traceparent: str | None, type_: str = "case.acknowledged") -> LoggedEvent:
    data = {"type": type_, "case_id": "case-1", "at": "2024-05-01T12:00:00Z", "actor": "ana"}
    return LoggedEvent(1, "case-1", 2, "e-1", type_, json.dumps(data), NOW, traceparent)


def test_an_event_stored_with_a_traceparent_is_published_with_it_as_ce_traceparent() -> None:
    [message] = to_messages(_logged(W3C_EXAMPLE), TOPICS)
    assert dict(message.headers)["ce_traceparent"] == W3C_EXAMPLE.encode()
    [untraced] = to_messages(_logged(None), TOPICS)
    assert "ce_traceparent" not in dict(untraced.headers)
    [corrupt] = to_messages(_logged("00-not-valid"), TOPICS)  # the log is not trusted as a wire contract
    assert "ce_traceparent" not in dict(corrupt.headers)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Set these OTEL_* variables only (every other OTEL_* one unset); tracing is off again afterwards."""

    def set_only(variables: dict[str, str]) -> None:
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    yield set_only
    shutdown_tracing()
    use_provider(None)


@pytest.mark.parametrize(
    "variables",
    [{}, {"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}],
)
def test_tracing_is_off_unless_an_exporter_is_named(
    variables: dict[str, str], environ: Callable[[dict[str, str]], None]
) -> None:
    environ(variables)
    assert configure_tracing() is False
    assert not tracing_on() and isinstance(tracer(), NoOpTracer)


def test_a_named_exporter_switches_tracing_on(environ: Callable[[dict[str, str]], None]) -> None:
    environ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "recovery-test"})
    assert configure_tracing() is True
    assert tracing_on() and not isinstance(tracer(), NoOpTracer)
    assert tracer().resource.attributes["service.name"] == "recovery-test"  # type: ignore[attr-defined]


def test_the_service_name_defaults_to_ours_and_the_console_exporter_records(
    environ: Callable[[dict[str, str]], None],
) -> None:
    environ({"OTEL_TRACES_EXPORTER": "console"})
    assert configure_tracing() is True
    with tracer().start_as_current_span("probe") as span:
        assert span.is_recording()
    assert tracer().resource.attributes["service.name"] == "recovery-loop"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_an_exporter_it_cannot_honour_fails_naming_the_variable(
    variables: dict[str, str], named: str, environ: Callable[[dict[str, str]], None]
) -> None:
    environ(variables)
    with pytest.raises(TracingConfigError, match=named):
        configure_tracing()
    assert not tracing_on()


def test_billings_answer_keeps_its_traceparent_for_the_case_event_it_causes() -> None:
    headers, body = encode_binary(
        id="r-1",
        source="billing",
        type=SETTLED,
        subject="case-1",
        time=NOW,
        data={"request_id": "req-1", "reference": "pay-1"},
    )
    traced = decode_result(body, [*headers, ("ce_traceparent", W3C_EXAMPLE.encode())])
    assert traced.settled and traced.traceparent == W3C_EXAMPLE
    assert decode_result(body, [*headers, ("ce_traceparent", b"nonsense")]).traceparent is None
