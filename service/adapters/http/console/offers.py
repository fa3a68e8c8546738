"""The actions the case page offers: the forms whose command the deciders would accept from this viewer now.

Nothing here restates a rule: each form is tried, as the command it would send with valid content, against the
domain's own dispatch. A form is offered unless every try is refused for the viewer's role (NotAllowed) or the
case's state (WrongState); what the viewer types in is the form's business, refused there naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from service.domain.case import CaseState, CompensationStatus, case_currency
from service.domain.commands import (
    Acknowledge,
    AddNote,
    AddStep,
    ApproveCompensation,
    Assign,
    Command,
    CommandRules,
    EditSummary,
    Facts,
    FollowUp,
    Pause,
    RecordStep,
    Reopen,
    RequestCompensation,
    Resolve,
    Resume,
    decide,
)
from service.domain.errors import DomainError, NotAllowed, WrongState
from service.domain.events import CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.sla import PauseReason
from service.domain.workflow import Actor

_PROBE_TEXT = "offered?"  # the text a try sends where the form asks for one


def tries(state: CaseState, rules: CommandRules) -> dict[str, list[Command]]:
    """Per form of the case page (its key, as CASE_COMMANDS names it), the commands it could send."""
    currency = case_currency(state) or "EUR"
    root_cause = min(rules.root_causes, default=None)
    found: dict[str, list[Command]] = {
        "assign": [Assign(_PROBE_TEXT)],
        "acknowledge": [Acknowledge()],
        "steps": [AddStep(StepKind.CALL_CUSTOMER)],
        "compensations": [RequestCompensation(CompensationKind.CREDIT, Decimal(1), currency, _PROBE_TEXT)],
        "resolve": [Resolve(ResolutionType.APOLOGY_ONLY, root_cause, _PROBE_TEXT)],
        "follow-up": [FollowUp(True)],
        "reopen": [Reopen(_PROBE_TEXT)],
        "notes": [AddNote(_PROBE_TEXT)],
        "summary": [EditSummary(_PROBE_TEXT)],
        "pause": [Pause(reason) for reason in PauseReason],
        "resume": [Resume()],
    }
    for step in state.steps:
        if step.outcome is None:
            found[f"outcome:{step.step_id}"] = [RecordStep(step.step_id, StepOutcome.COMPLETED)]
    for c in state.compensations:
        if c.status is CompensationStatus.AWAITING_APPROVAL:
            found[f"approve:{c.request_id}"] = [ApproveCompensation(c.request_id)]
    return found


def offers(state: CaseState, actor: Actor, rules: CommandRules, now: datetime) -> set[str]:
    """The keys of the forms the page shows this viewer."""
    facts = Facts(actor, now)
    return {
        key for key, commands in tries(state, rules).items() if _any_accepted(commands, state, facts, rules)
    }


def _any_accepted(commands: Iterable[Command], state: CaseState, facts: Facts, rules: CommandRules) -> bool:
    for command in commands:
        try:
            decide(command, state, facts, rules)
        except (NotAllowed, WrongState):
            continue
        except DomainError:  # any other refusal is about the content the viewer will type in
            return True
        return True
    return False
