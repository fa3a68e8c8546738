"""Money: ISO 4217 codes, amounts in the currency's minor unit under a maximum, plain notation, request ids."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.compensation import compensation_request_id
from service.domain.errors import InvalidValue
from service.domain.money import MAX_AMOUNT, minor_unit, minor_units, plain, quantize_amount

# What billing's schema (schemas/outgoing/compensation.requested.data.schema.json) accepts.
BILLING_AMOUNT = re.compile(r"^[0-9]{1,18}(\.[0-9]{1,6})?$")


@pytest.mark.parametrize(
    ("currency", "places"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3), ("TND", 3), ("CLF", 4)],
)
def test_the_currency_table_has_the_iso_4217_minor_units(currency: str, places: int) -> None:
    assert minor_unit(currency) == places


def test_the_currency_table_holds_only_three_letter_codes_with_a_minor_unit_of_zero_to_four() -> None:
    table = minor_units()
    assert len(table) > 150
    assert all(re.fullmatch(r"[A-Z]{3}", code) and 0 <= places <= 4 for code, places in table.items())
    assert not {"XAU", "XXX", "XTS", "XDR"} & set(table)  # no minor unit: not money billing pays


@pytest.mark.parametrize("currency", ["XXE", "EURO", "eur", "", "XAU", "XXX", "E\x00R"])
def test_a_currency_that_is_not_a_current_iso_4217_code_is_refused_naming_currency(currency: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        quantize_amount(Decimal("10"), currency)
    assert refused.value.field == "currency"


@pytest.mark.parametrize(
    ("amount", "currency", "stored"),
    [
        ("1E+1", "EUR", "10.00"),
        ("10", "EUR", "10.00"),
        ("10.5", "EUR", "10.50"),
        ("10.500", "EUR", "10.50"),  # trailing zeros are not more precision
        ("100", "JPY", "100"),
        ("1E+2", "JPY", "100"),
        ("1.234", "BHD", "1.234"),
        ("0.01", "EUR", "0.01"),
        ("1000000000", "EUR", "1000000000.00"),
    ],
)
def test_an_amount_is_stored_in_the_currencys_minor_unit_in_plain_notation(
    amount: str, currency: str, stored: str
) -> None:
    quantized = quantize_amount(Decimal(amount), currency)
    assert str(quantized) == plain(quantized) == stored


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0.1234567", "EUR"),
        ("1e-7", "EUR"),
        ("10.001", "EUR"),
        ("100.5", "JPY"),
        ("1.2345", "BHD"),
        ("1.07e308", "EUR"),
        ("1000000000.01", "EUR"),
        ("0", "EUR"),
        ("-5", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("1E+999999999", "EUR"),
        ("1E-999999999", "EUR"),
    ],
)
def test_an_amount_out_of_its_currencys_bounds_is_refused_naming_amount(amount: str, currency: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        quantize_amount(Decimal(amount), currency)
    assert refused.value.field == "amount"


@given(
    amount=st.decimals(allow_nan=True, allow_infinity=True),
    currency=st.sampled_from(["EUR", "JPY", "BHD", "CLF", "USD"]),
)
def test_every_amount_accepted_is_one_billing_accepts_and_keeps_its_value(
    amount: Decimal, currency: str
) -> None:
    try:
        quantized = quantize_amount(amount, currency)
    except InvalidValue as refused:
        assert refused.field == "amount"
        return
    assert quantized == amount and 0 < quantized <= MAX_AMOUNT
    assert BILLING_AMOUNT.match(plain(quantized)) and str(quantized) == plain(quantized)
    assert -quantized.as_tuple().exponent == minor_unit(currency)  # type: ignore[operator]


def test_plain_notation_never_has_an_exponent() -> None:
    assert plain(Decimal("1E+1")) == "10"
    assert plain(Decimal("1E-7")) == "0.0000001"


def test_a_request_id_is_unique_across_cases_and_actors_and_stable_for_a_repeated_key() -> None:
    first = compensation_request_id("case-a", "ana", "refund-1", 1)
    assert first == compensation_request_id("case-a", "ana", "refund-1", 7)  # the key, not the count, decides
    others = {
        compensation_request_id("case-b", "ana", "refund-1", 1),
        compensation_request_id("case-a", "mia", "refund-1", 1),
        compensation_request_id("case-a", "ana", "refund-2", 1),
        compensation_request_id("case-a", "ana", None, 1),
        compensation_request_id("case-a", "ana", None, 2),
        compensation_request_id("case-b", "ana", None, 1),
    }
    assert len(others) == 6 and first not in others
    # no separator to confuse: an actor or key holding the other's characters still names another request
    assert compensation_request_id("a", "b/c", "d", 1) != compensation_request_id("a", "b", "c/d", 1)
