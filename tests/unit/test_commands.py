"""Commands are values with one dispatch: every command type has a name and a decider, and every entry of the
routing table makes a command of its own type from a valid body."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.adapters.http.case_commands import CASE_COMMANDS
from service.domain.commands import (
    Acknowledge,
    AddNote,
    AddStep,
    ApproveCompensation,
    Assign,
    Command,
    CommandRules,
    CorrectDeadlines,
    EditSummary,
    Facts,
    FollowUp,
    LandCompensationResult,
    OpenByHand,
    Pause,
    RecordStep,
    Reopen,
    RequestCompensation,
    Resolve,
    Resume,
    command_name,
    decide,
)
from service.domain.errors import DomainError
from service.domain.events import CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.severity import Severity
from service.domain.signals import Tier
from service.domain.sla import PauseReason, SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS, open_case

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = CommandRules(SlaPolicy(), frozenset({"billing_error"}), case_ids=CASE_IDS)
ONE_OF_EACH: list[Command] = [
    Assign("ana"),
    Acknowledge(),
    AddStep(StepKind.CALL_CUSTOMER),
    RecordStep("step-1", StepOutcome.COMPLETED),
    Resolve(ResolutionType.FULL_REFUND, "billing_error", "fix the invoice run"),
    RequestCompensation(CompensationKind.REFUND, Decimal("10"), "EUR", "late"),
    ApproveCompensation("r-1"),
    FollowUp(True),
    Reopen("again"),
    AddNote("a note"),
    EditSummary("the invoice was wrong"),
    Pause(PauseReason.AWAITING_CUSTOMER, NOW + timedelta(hours=2)),
    Resume(),
    OpenByHand("cust-2", Severity.MAJOR, None, Tier.STANDARD, "escalated"),
    LandCompensationResult("r-1", True, ""),
    CorrectDeadlines(SlaPolicy(), None),
]


def test_every_command_type_has_a_name_and_one_example_here() -> None:
    types = set(typing.get_args(Command))
    assert {type(c) for c in ONE_OF_EACH} == types
    assert len({command_name(c) for c in ONE_OF_EACH}) == len(types)
    assert command_name(RecordStep("step-2", StepOutcome.SKIPPED)) == "step_outcome:step-2"


@pytest.mark.parametrize("command", ONE_OF_EACH, ids=lambda c: type(c).__name__)
def test_every_command_reaches_a_decider_that_decides_or_refuses_it(command: Command) -> None:
    case = None if isinstance(command, OpenByHand) else open_case()
    try:
        events = decide(command, case, Facts(Actor("mia", "manager"), NOW), RULES)
    except DomainError:
        return  # refused by its decider (e.g. no step-1 on this case): it was reached
    assert all(e.case_id == (events[0].case_id if case is None else case.case_id) for e in events)


def test_a_command_on_a_case_needs_the_case() -> None:
    with pytest.raises(ValueError, match="decided on a case"):
        decide(Acknowledge(), None, Facts(Actor("mia", "manager"), NOW), RULES)


def test_every_routing_entry_makes_its_command_from_a_valid_body() -> None:
    bodies = {
        "assign": {"owner": "ana"},
        "add_step": {"kind": "call_customer"},
        "record_step": {"outcome": "completed"},
        "resolve": {
            "resolution_type": "full_refund",
            "root_cause": "billing_error",
            "prevention_action": "fix",
        },
        "request_compensation": {"kind": "refund", "amount": "10", "currency": "EUR", "reason": "late"},
        "follow_up": {"satisfied": True},
        "reopen": {"reason": "again"},
        "add_note": {"note": "n"},
        "edit_summary": {"summary": "s"},
        "pause": {"reason": "awaiting_customer"},
    }
    ids = {"step_id": "step-1", "request_id": "r-1"}
    made = {}
    for entry in CASE_COMMANDS:
        body = None if entry.body is None else entry.body.model_validate(bodies[entry.name])
        made[entry.name] = entry.make(body, {k: ids[k] for k in entry.ids})
    assert made["record_step"] == RecordStep("step-1", StepOutcome.COMPLETED, "")
    assert made["approve_compensation"] == ApproveCompensation("r-1")
    assert len({type(c) for c in made.values()}) == len(CASE_COMMANDS)  # each entry its own command
