"""The case page offers exactly what the deciders accept: for every role and every state a case goes through,
each form shown is accepted when sent with valid content, and each form hidden is refused whatever it says."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from service.adapters.http.case_commands import CASE_COMMANDS
from service.adapters.http.console.offers import offers, tries
from service.domain.case import CaseState, evolve
from service.domain.commands import (
    AddStep,
    Command,
    CommandRules,
    Facts,
    FollowUp,
    Pause,
    RequestCompensation,
    Resolve,
    decide,
)
from service.domain.errors import DomainError, NotAllowed, WrongState
from service.domain.events import CompensationKind, ResolutionType, StepKind
from service.domain.signals import Money
from service.domain.sla import PauseReason, SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS, T0, open_case

RULES = CommandRules(SlaPolicy(), frozenset({"billing_error"}), case_ids=CASE_IDS)
AGENT, MANAGER, OWNER = Actor("ana", "agent"), Actor("mia", "manager"), Actor("olu", "owner")
NOW = T0 + timedelta(minutes=30)


def after(state: CaseState, actor: Actor, *commands: Command) -> CaseState:
    for command in commands:
        for event in decide(command, state, Facts(actor, NOW), RULES):
            state = evolve(state, event)
    return state


OPEN = open_case()
WITH_STEP = after(OPEN, AGENT, AddStep(StepKind.CALL_CUSTOMER))
NO_STAKE = open_case(amount_at_stake=Money(Decimal(0), "EUR"))  # every compensation on it waits for approval
WAITING = after(NO_STAKE, AGENT, RequestCompensation(CompensationKind.CREDIT, Decimal(20), "EUR", "late"))
PAUSED = after(OPEN, AGENT, Pause(PauseReason.AWAITING_PARTS, NOW + timedelta(hours=2)))
RESOLVED = after(OPEN, MANAGER, Resolve(ResolutionType.APOLOGY_ONLY, "billing_error", "check invoices"))
CLOSED = after(RESOLVED, AGENT, FollowUp(True))
STATES = {"open": OPEN, "with_step": WITH_STEP, "waiting": WAITING, "paused": PAUSED}
STATES |= {"resolved": RESOLVED, "closed": CLOSED}


def accepted(command: Command, state: CaseState, actor: Actor) -> bool:
    try:
        decide(command, state, Facts(actor, NOW), RULES)
    except (NotAllowed, WrongState):
        return False
    except DomainError:
        return True  # refused for its content only
    return True


@pytest.mark.parametrize("actor", [AGENT, MANAGER, OWNER], ids=lambda a: a.role)
@pytest.mark.parametrize("name", STATES)
def test_every_form_shown_is_accepted_and_every_form_hidden_is_refused(name: str, actor: Actor) -> None:
    state = STATES[name]
    shown = offers(state, actor, RULES, NOW)
    for key, commands in tries(state, RULES).items():
        results = [accepted(c, state, actor) for c in commands]
        assert (key in shown) == any(results), (key, results)


def test_every_command_on_a_case_has_a_form_tried() -> None:
    keys = set(tries(WAITING, RULES)) | set(tries(WITH_STEP, RULES))
    for entry in CASE_COMMANDS:
        ids = {"step_id": "step-1", "request_id": WAITING.compensations[0].request_id}
        assert entry.form_key({k: ids[k] for k in entry.ids}) in keys, entry.name


def test_what_each_role_sees_follows_the_rules() -> None:
    assert {"resolve", "approve:" + WAITING.compensations[0].request_id} <= offers(
        WAITING, MANAGER, RULES, NOW
    )
    assert not {k for k in offers(WAITING, AGENT, RULES, NOW) if k.startswith("approve") or k == "resolve"}
    assert "outcome:step-1" in offers(WITH_STEP, AGENT, RULES, NOW)
    paused = offers(PAUSED, AGENT, RULES, NOW)
    assert "resume" in paused and "pause" not in paused
    assert offers(CLOSED, AGENT, RULES, NOW) == {"reopen", "notes"}
    assert offers(CLOSED, MANAGER, RULES, NOW) == {"reopen", "notes", "summary"}
    assert {"follow-up", "compensations"} <= offers(RESOLVED, AGENT, RULES, NOW)


def test_the_one_who_requested_a_compensation_is_not_offered_its_approval() -> None:
    requested_by_manager = after(
        NO_STAKE, MANAGER, RequestCompensation(CompensationKind.CREDIT, Decimal(20), "EUR", "late")
    )
    key = "approve:" + requested_by_manager.compensations[0].request_id
    assert key not in offers(requested_by_manager, MANAGER, RULES, NOW)
    assert key in offers(requested_by_manager, OWNER, RULES, NOW)
