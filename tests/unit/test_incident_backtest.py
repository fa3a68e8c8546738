"""The incident backtest's pure part (service/domain/incident_backtest.py) and its command's output and
refusals (service/entrypoints/incidents.py): the span, the lead-in, what is reported, the table, the JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.adapters.incident_policy_file import load_incident_policy
from service.domain.errors import InvalidValue
from service.domain.incident_backtest import MAX_SPAN, Backtesting, BacktestSpan, lead_in
from service.domain.incidents import GroupKey, IncidentPolicy, Sighting, SurgeRule
from service.entrypoints import cli
from service.entrypoints.incidents import describe, json_lines, table

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "incident-policy.json"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULE = SurgeRule(
    name="tight",
    group_by=(GroupKey.SERVICE, GroupKey.REGION),
    window=timedelta(minutes=10),
    min_customers=3,
    baseline_multiple=2,
    baseline_period=timedelta(minutes=40),
    on_crossing="propose",
)
POLICY = IncidentPolicy(
    version="v-test", surges=(RULE, RULE.model_copy(update={"name": "quiet", "min_customers": 50}))
)


def seen(minutes: float, customer: str, region: str = "north") -> Sighting:
    return Sighting(T0 + timedelta(minutes=minutes), customer, "complaint", "other", "broadband", region)


def test_a_span_is_refused_naming_its_end_when_empty_reversed_or_over_ninety_days() -> None:
    assert BacktestSpan(T0, T0 + MAX_SPAN).end == T0 + timedelta(days=90)
    for end, reason in (
        (T0, "after the start"),
        (T0 - timedelta(hours=1), "after the start"),
        (T0 + MAX_SPAN + timedelta(microseconds=1), "at most 90 days"),
    ):
        with pytest.raises(InvalidValue, match=reason) as refused:
            BacktestSpan(T0, end)
        assert refused.value.field == "end"
    with pytest.raises(InvalidValue, match="UTC offset") as refused:
        BacktestSpan(T0.replace(tzinfo=None), T0 + timedelta(days=1))
    assert refused.value.field == "start"


def test_the_lead_in_is_the_longest_baseline_period_and_window_of_any_rule() -> None:
    assert lead_in(IncidentPolicy()) == timedelta(days=7, minutes=15)
    assert lead_in(load_incident_policy(EXAMPLE)) == timedelta(days=7, minutes=30)  # region-wide: 30 minutes
    assert lead_in(IncidentPolicy(surges=())) == timedelta(0)
    span = BacktestSpan(T0, T0 + timedelta(days=1))
    assert span.reads_after(POLICY) == T0 - timedelta(minutes=50)


def test_only_windows_ending_in_the_span_are_reported_and_the_lead_in_only_feeds_them() -> None:
    span = BacktestSpan(T0, T0 + timedelta(minutes=30))
    run = Backtesting(POLICY, span)
    run.feed([seen(-20 + k, f"early-{k}", "west") for k in range(3)])  # would fire at -18: in the lead-in
    run.feed([seen(-1, "a"), seen(-0.5, "b"), seen(0, "c")])  # crosses at the span's start exactly
    run.feed([seen(29, "x", "east"), seen(29.5, "y", "east"), seen(30, "z", "east")])  # at its end exactly
    run.feed(
        [seen(30, "late-1", "south"), seen(30, "late-2", "south"), seen(31, "late-3", "south")]
    )  # after it
    result = run.result()
    assert result.failures == 12 and [r.rule.name for r in result.rules] == ["tight", "quiet"]
    [tight, quiet] = result.rules
    assert [(e.scope["region"], e.at) for e in tight.fired] == [
        ("north", T0),
        ("east", T0 + timedelta(minutes=30)),
    ]  # not the west (it crossed before the start), nor the south (after the end)
    assert quiet.fired == ()


def test_the_table_shows_each_incident_with_why_and_a_count_per_rule() -> None:
    run = Backtesting(POLICY, BacktestSpan(T0, T0 + timedelta(hours=1)))
    run.feed([seen(-35, "old"), seen(1, "a"), seen(2, "b"), seen(3.5, "c")])
    lines = list(table(run.result(), POLICY))
    assert lines[0] == (
        "incident policy v-test, from 2026-03-02T09:00:00Z to 2026-03-02T10:00:00Z: 4 failures replayed,"
        " from 2026-03-02T08:10:00Z on"
    )
    assert lines[2] == "rule tight: " + describe(RULE)
    assert describe(RULE) == (
        "3 customers within 10m per service and region, and 2 times the baseline of the 40m before; proposes"
    )
    assert lines[3].split() == [
        "FIRES",
        "AT",
        "(window",
        "end)",
        "WINDOW",
        "FROM",
        "CUSTOMERS",
        "BASELINE",
        "CROSSING",
        "SCOPE",
    ]
    assert lines[4].split() == [
        "2026-03-02T09:03:30Z",
        "2026-03-02T08:53:30Z",
        "3",
        "0.25",
        "propose",
        "service=broadband",
        "region=north",
    ]  # one customer in the four windows before: a baseline of 0.25
    assert lines[5] == "tight: 1 incident would have been proposed"
    assert lines[-1] == "quiet: 0 incidents would have been proposed" and len(lines) == 9


def test_the_json_lines_hold_each_incident_then_each_rules_count() -> None:
    run = Backtesting(POLICY, BacktestSpan(T0, T0 + timedelta(hours=1)))
    run.feed([seen(1, "a"), seen(2, "b"), seen(3.5, "c")])
    [incident, tight, quiet] = [json.loads(line) for line in json_lines(run.result())]
    assert incident == {
        "type": "incident",
        "rule": "tight",
        "incident_id": run.result().rules[0].fired[0].incident_id,
        "at": "2026-03-02T09:03:30+00:00",
        "scope": {"service": "broadband", "region": "north"},
        "customers": 3,
        "baseline": None,
        "window_start": "2026-03-02T08:53:30+00:00",
        "crossing": "propose",
    }
    assert tight == {"type": "rule", "rule": "tight", "incidents": 1, "crossing": "propose"}
    assert quiet["incidents"] == 0


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--from", "yesterday", "--to", "2026-03-02T00:00:00Z"], "argument --from: not an RFC 3339 time"),
        (["--from", "2026-03-01", "--to", "2026-03-02T00:00:00Z"], "--from: needs a UTC offset"),
        (["--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z"], "--to: must be after the start"),
        (
            ["--from", "2026-01-01T00:00:00Z", "--to", "2026-06-01T00:00:00+02:00"],
            "--to: must be at most 90 days",
        ),
        (
            [
                "--from",
                "2026-03-01T00:00:00Z",
                "--to",
                "2026-03-02T00:00:00Z",
                "--policy",
                "/nowhere/policy.json",
            ],
            "--policy: /nowhere/policy.json: cannot be read",
        ),
    ],
)
def test_recovery_refuses_a_bad_flag_with_exit_2_naming_it_before_it_connects(
    flags: list[str], reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    monkeypatch.delenv("RECOVERY_INCIDENT_POLICY_FILE", raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)  # the suite's logging stays as it is
    try:
        code = cli.main(["incidents", "backtest", *flags])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2 and reason in capsys.readouterr().err


def test_a_policy_file_that_is_no_policy_is_refused_naming_its_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"surges": [{**json.loads(RULE.model_dump_json()), "min_customers": 1}]}))
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)
    flags = ["--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--policy", str(bad)]
    assert cli.main(["incidents", "backtest", *flags]) == 2
    assert "--policy: " in (err := capsys.readouterr().err) and "surges.0.min_customers" in err
