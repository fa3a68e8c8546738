"""Amounts reach billing in plain notation, in the currency's minor unit, as the outgoing schema requires."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator

from service.adapters.kafka.contract import COMPENSATION_DATA_PATH
from service.adapters.kafka.outgoing import to_messages
from service.domain.compensation import CompensationHistory, decide_request_compensation
from service.domain.compensation_limits import CompensationLimits, CurrencyLimits, LimitRule
from service.domain.events import CompensationKind, CompensationRequested
from service.domain.money import minor_units
from service.domain.workflow import Actor
from tests.contract.test_outgoing import TOPICS, load, logged, opened


def _unlimited_owner() -> CompensationLimits:
    owner = CurrencyLimits((LimitRule({"owner": None}),), None, {"owner": None})
    return CompensationLimits(currencies={code: owner for code in minor_units()})


OWNER_UNLIMITED = _unlimited_owner()


def requested(amount: str, currency: str = "EUR") -> CompensationRequested:
    _, state = opened()
    [event] = decide_request_compensation(
        state,
        "r-1",
        CompensationKind.CREDIT,
        Decimal(amount),
        currency,
        "sorry",
        Actor("olu", "owner"),
        OWNER_UNLIMITED,
        CompensationHistory(),
        state.opened_at,
    )
    assert isinstance(event, CompensationRequested)
    return event


def billed_amount(event: CompensationRequested) -> str:
    [message] = [m for m in to_messages(logged(event), TOPICS) if m.topic == TOPICS.compensation]
    data = json.loads(message.value)
    Draft202012Validator(load(COMPENSATION_DATA_PATH)).validate(data)
    return data["amount"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("amount", "currency", "billed"),
    [("1E+1", "EUR", "10.00"), ("12.5", "EUR", "12.50"), ("1E+3", "JPY", "1000"), ("0.005", "KWD", "0.005")],
)
def test_a_decided_amount_goes_to_billing_in_the_minor_unit_in_plain_notation(
    amount: str, currency: str, billed: str
) -> None:
    assert billed_amount(requested(amount, currency)) == billed


def test_an_amount_stored_in_exponent_notation_before_the_checks_still_goes_out_in_plain_notation() -> None:
    stored_before = replace(requested("10"), amount=Decimal("1E+1"))
    assert billed_amount(stored_before) == "10"
