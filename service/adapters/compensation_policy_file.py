"""The compensation policy file (RECOVERY_COMPENSATION_POLICY_FILE, read once at start-up): limits per currency.

Strict like the SLA policy file: unknown keys, wrong types and bad values are refused, every error names its
field. Without the file the built-in table (service/domain/compensation_limits.py) holds.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.adapters.policy_file import read_document
from service.domain.compensation_limits import ROLES, CompensationLimits, CurrencyLimits, LimitRule
from service.domain.errors import InvalidValue
from service.domain.money import compensation_currency, minor_unit
from service.domain.signals import Category, Tier

Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18)]
RoleLimits = dict[Annotated[str, Field(pattern="^(agent|manager|owner)$")], Amount | None]


class CompensationPolicyFileError(ValueError):
    """The compensation policy file cannot be read or is invalid; the message names the file and each field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Narrowing(_Strict):
    category: list[Category] | None = Field(default=None, min_length=1)
    tier: list[Tier] | None = Field(default=None, min_length=1)


class PerCaseRule(_Strict):
    when: Narrowing = Narrowing()
    limits: RoleLimits = Field(
        description="role -> the most one actor of it grants on one case; null: no limit"
    )


class CurrencyFile(_Strict):
    per_case: list[PerCaseRule] = Field(
        min_length=1, description="rules in order: the first that matches decides"
    )
    per_customer: Amount | None = Field(description="the most one customer receives in the window, all cases")
    per_actor_per_day: RoleLimits = Field(
        description="role -> the most one actor grants without approval in 24 h"
    )


class CompensationPolicyFile(_Strict):
    version: str = Field(min_length=1, max_length=64)
    stake_factor: Decimal = Field(Decimal("1.5"), gt=0, allow_inf_nan=False)
    customer_window: timedelta = Field(timedelta(days=90), description="ISO 8601, e.g. P90D")
    currencies: dict[str, CurrencyFile] = Field(min_length=1)

    @field_validator("customer_window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. P90D")
        return value

    @field_validator("currencies")
    @classmethod
    def _iso_currencies(cls, value: dict[str, CurrencyFile]) -> dict[str, CurrencyFile]:
        for code in value:
            try:
                minor_unit(compensation_currency(code))
            except InvalidValue as e:
                raise ValueError(e.detail) from e
        return value

    def limits(self) -> CompensationLimits:
        return CompensationLimits(
            currencies={code: _currency(c) for code, c in self.currencies.items()},
            stake_factor=self.stake_factor,
            customer_window=self.customer_window,
            version=self.version,
        )


def _currency(c: CurrencyFile) -> CurrencyLimits:
    rules = tuple(
        LimitRule(
            limits={role: r.limits[role] for role in ROLES if role in r.limits},
            categories=None if r.when.category is None else frozenset(r.when.category),
            tiers=None if r.when.tier is None else frozenset(r.when.tier),
        )
        for r in c.per_case
    )
    return CurrencyLimits(rules, c.per_customer, dict(c.per_actor_per_day))


def load_compensation_limits(path: Path | None) -> CompensationLimits:
    """The limits in the file, or the built-in table when no file is configured."""
    if path is None:
        return CompensationLimits()
    return read_document(path, CompensationPolicyFile, CompensationPolicyFileError).limits()
