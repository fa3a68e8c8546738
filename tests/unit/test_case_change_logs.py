"""Intake logs one line per case change (opened, escalated, reopened), with ids and never free text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from structlog.testing import capture_logs

from service.adapters.kafka.consumer import log_case_changes
from service.domain.intake import Outcome, plan_intake
from service.domain.severity import load_default_policy
from service.domain.signals import Signal, SignalKind
from service.domain.sla import SlaPolicy
from tests.cases import CASE_IDS

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
SECRET = "my neighbour Jane Doe saw the technician smash the vase"


def nps(n: int, score: int, customer: str) -> Signal:
    return Signal(
        source="survey",
        id=f"n-{n}",
        kind=SignalKind.NPS,
        occurred_at=T0 + timedelta(minutes=n),
        received_at=T0 + timedelta(minutes=n),
        customer_id=customer,
        score=score,
        text=SECRET,
    )


def test_one_line_per_case_change_with_case_customer_and_signal_ids_and_no_free_text() -> None:
    signals = [nps(1, 6, "c-1"), nps(2, 6, "c-1"), nps(3, 2, "c-1"), nps(4, 9, "c-2")]
    plan = plan_intake(
        signals, [None] * 4, {}, {}, load_default_policy(), SlaPolicy(), timedelta(days=30), T0, case_ids=CASE_IDS
    )
    assert [a.outcome for a in plan.applied] == [
        Outcome.OPENED,
        Outcome.ATTACHED,
        Outcome.ESCALATED,
        Outcome.NOT_A_FAILURE,
    ]
    with capture_logs() as lines:
        log_case_changes(plan.applied)
    case_id = CASE_IDS.for_signal(signals[0], 1)
    assert [(line["event"], line["severity"], line["signal_id"]) for line in lines] == [
        ("case_opened", "minor", "n-1"),
        ("case_escalated", "critical", "n-3"),  # nps 0-3 is major, raised for the third failure
    ]
    assert all(
        (line["case_id"], line["customer_id"], line["signal_source"], line["log_level"])
        == (case_id, "c-1", "survey", "info")
        for line in lines
    )
    assert not any(SECRET in str(value) for line in lines for value in line.values())
