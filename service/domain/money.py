"""Money: ISO 4217 currencies, amounts in the currency's minor unit, a maximum, plain notation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from importlib import resources

from service.domain.errors import InvalidValue

# The largest amount one compensation may name, in the currency's major unit. Far above any real
# recovery, far below what the outgoing schema can carry (18 integer digits).
MAX_AMOUNT = Decimal(1_000_000_000)


@lru_cache(maxsize=1)
def minor_units() -> Mapping[str, int]:
    """ISO 4217 code -> decimals of its minor unit: currencies.json packaged with the domain (its source is named there)."""
    text = resources.files("service.domain").joinpath("currencies.json").read_text(encoding="utf-8")
    units: dict[str, int] = json.loads(text)["minor_units"]
    return units


@lru_cache(maxsize=1)
def fund_codes() -> frozenset[str]:
    """ISO 4217 fund codes and units of account (CLF, UYW, …): currencies.json lists them."""
    text = resources.files("service.domain").joinpath("currencies.json").read_text(encoding="utf-8")
    return frozenset(json.loads(text)["funds"])


def compensation_currency(currency: str) -> str:
    """A compensation is paid in a currency, never in a fund code or a unit of account (refused naming `currency`)."""
    if currency in fund_codes():
        raise InvalidValue(
            f"{currency} is an ISO 4217 fund code or unit of account, not a currency billing pays: compensate in"
            " the currency itself",
            "currency",
        )
    return currency


def minor_unit(currency: str) -> int:
    """A currency is a current ISO 4217 code with a minor unit; anything else is refused naming `currency`."""
    units = minor_units().get(currency)
    if units is None:
        raise InvalidValue(f"{currency!r} is not a current ISO 4217 currency code", "currency")
    return units


def quantize_amount(amount: Decimal, currency: str) -> Decimal:
    """A positive amount, at most MAX_AMOUNT, with no more decimals than the currency has, in its minor unit."""
    places = minor_unit(currency)
    if not amount.is_finite() or amount <= 0:
        raise InvalidValue("amount must be a positive decimal", "amount")
    if amount > MAX_AMOUNT:
        raise InvalidValue(f"amount must be at most {plain(MAX_AMOUNT)} {currency}", "amount")
    quantized = amount.quantize(Decimal(1).scaleb(-places))
    if quantized != amount:
        raise InvalidValue(f"{currency} amounts have at most {places} decimals", "amount")
    return quantized


def checked_stake(amount: Decimal, currency: str) -> Decimal:
    """An amount at stake: as a compensation's amount, in a currency billing pays, but zero says nothing is at stake."""
    compensation_currency(currency)
    if not (amount.is_finite() and amount == 0):
        quantize_amount(amount, currency)
    else:
        minor_unit(currency)
    return amount


def plain(amount: Decimal) -> str:
    """Plain decimal notation, never an exponent: 1E+1 is written 10."""
    return format(amount, "f")
