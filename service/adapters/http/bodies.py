"""The command bodies: strict (an unknown field is refused naming it) and bounded (see bounds.py)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from service.adapters.http.bounds import TEXT_CHARACTERS, Owner, id_field, text_field
from service.domain.events import CompensationKind, ResolutionType, StepKind, StepOutcome
from service.domain.money import MAX_AMOUNT
from service.domain.severity import Severity
from service.domain.signals import Channel, Tier
from service.domain.sla import PauseReason
from service.domain.summary import MAX_SUMMARY_LENGTH


class CommandBody(BaseModel):
    """A command's body: a field it does not know is refused (422 naming it), never ignored."""

    model_config = ConfigDict(extra="forbid")


class AssignBody(CommandBody):
    owner: Owner


class StepBody(CommandBody):
    kind: StepKind


class OutcomeBody(CommandBody):
    outcome: StepOutcome
    notes: str = text_field("What happened (staff notes).", required=False, default="")


class ResolveBody(CommandBody):
    resolution_type: ResolutionType | None = None
    root_cause: str | None = id_field("A tag from the configured root-cause taxonomy.", default=None)
    prevention_action: str | None = text_field("What changes so it does not happen again.", default=None)


class CompensationBody(CommandBody):
    kind: CompensationKind
    amount: Decimal = Field(
        gt=0,
        le=MAX_AMOUNT,
        description='In the case\'s currency, as a JSON string or number, e.g. "120.00": no more decimals than'
        f" the currency's ISO 4217 minor unit (EUR 2, JPY 0, BHD 3), at most {MAX_AMOUNT:f}. Stored and sent to"
        " billing in that minor unit, in plain notation.",
    )
    currency: str = Field(
        min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="A current ISO 4217 code, e.g. EUR."
    )
    reason: str = text_field("Why, for billing and the case history.")


class PauseBody(CommandBody):
    reason: PauseReason = Field(
        description="What the case waits for; each reason has its own budget per case."
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="When to resume (RFC 3339 with an offset), in the future; later than the reason's budget"
        " left allows, the case resumes when the budget runs out (`resumes_at` on the event and the case).",
    )


class FollowUpBody(CommandBody):
    satisfied: bool
    notes: str = text_field("What the customer said.", required=False, default="")


class ReopenBody(CommandBody):
    reason: str = text_field("Why the case is reopened.")


class NoteBody(CommandBody):
    note: str = text_field("An internal note for staff: kept on the case, never published downstream.")


class SummaryBody(CommandBody):
    summary: str = Field(
        min_length=1,
        max_length=MAX_SUMMARY_LENGTH,
        pattern=TEXT_CHARACTERS,
        description=f"What went wrong, in one line staff repeat back to the customer; at most {MAX_SUMMARY_LENGTH}"
        " characters, white space collapsed. Personal data: stored sealed with the customer's key.",
    )


class StakeBody(CommandBody):
    amount: Decimal = Field(
        ge=0,
        le=MAX_AMOUNT,
        description="What the customer stands to lose, as a JSON string or number; 0: nothing is at stake (every"
        " compensation waits for approval). No more decimals than the currency's minor unit.",
    )
    currency: str = Field(
        min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="A current ISO 4217 code, e.g. EUR."
    )


class OpenBody(CommandBody):
    customer_id: str = id_field("The customer the case is about.")
    severity: Severity
    channel: Channel | None = None
    customer_tier: Tier = Tier.STANDARD
    reason: str = text_field("Why staff open it (internal escalation).")
    amount_at_stake: StakeBody | None = Field(
        default=None,
        description="The amount at stake, stated by the opener: without it every compensation on the case waits"
        " for approval.",
    )
