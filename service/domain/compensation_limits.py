"""Compensation limits as data: per currency, per role, per case (narrowed by category and tier), per customer
across cases in a rolling window, and per actor in a day. What no rule covers needs approval (default deny)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from service.domain.money import plain
from service.domain.signals import Category, Tier

ROLES = ("agent", "manager", "owner")


@dataclass(frozen=True)
class Allowance:
    """How much an actor, a customer or a case may have without approval (None: no limit), and the rule that says so."""

    limit: Decimal | None
    rule: str

    def covers(self, total: Decimal) -> bool:
        return self.limit is None or total <= self.limit


def _unlimited(rule: str) -> Allowance:
    return Allowance(None, rule)


@dataclass(frozen=True)
class LimitRule:
    """Per-case limits by role for the cases it matches (no `categories` or `tiers`: every case)."""

    limits: Mapping[str, Decimal | None]
    categories: frozenset[Category] | None = None
    tiers: frozenset[Tier] | None = None

    def matches(self, category: Category | None, tier: Tier) -> bool:
        in_category = self.categories is None or category in self.categories
        return in_category and (self.tiers is None or tier in self.tiers)

    def describe(self) -> str:
        narrowed = [
            *(["category " + "/".join(sorted(self.categories))] if self.categories else []),
            *(["tier " + "/".join(sorted(self.tiers))] if self.tiers else []),
        ]
        return f" for {', '.join(narrowed)}" if narrowed else ""


@dataclass(frozen=True)
class CurrencyLimits:
    per_case: tuple[LimitRule, ...]
    per_customer: Decimal | None  # across all of a customer's cases in the window; None: no limit
    per_actor_per_day: Mapping[str, Decimal | None]  # a role not named: every grant of its own waits


def _major(agent: int, manager: int, customer: int) -> CurrencyLimits:
    return CurrencyLimits(
        per_case=(LimitRule({"agent": Decimal(agent), "manager": Decimal(manager), "owner": None}),),
        per_customer=Decimal(customer),
        per_actor_per_day={"agent": Decimal(agent * 4), "manager": Decimal(manager * 4), "owner": None},
    )


# The built-in table (docs/cx-leads.md); RECOVERY_COMPENSATION_POLICY_FILE replaces it whole.
DEFAULT_CURRENCIES: Mapping[str, CurrencyLimits] = {
    "EUR": _major(50, 500, 1000),
    "USD": _major(50, 500, 1000),
    "GBP": _major(40, 400, 800),
    "CHF": _major(50, 500, 1000),
}


@dataclass(frozen=True)
class CompensationLimits:
    """Per currency: who may grant how much on a case, a customer and a day, and how far above the stake waits."""

    currencies: Mapping[str, CurrencyLimits] = field(default_factory=lambda: DEFAULT_CURRENCIES)
    stake_factor: Decimal = Decimal("1.5")
    customer_window: timedelta = timedelta(days=90)
    version: str | None = None  # the policy file's; None: the built-in table

    def per_case(self, role: str, currency: str, category: Category | None, tier: Tier) -> Allowance:
        """The first rule of the currency that matches the case decides; no rule or no limit for the role: deny."""
        limits = self.currencies.get(currency)
        if limits is None:
            return Allowance(Decimal(0), f"no limit is set in {currency}")
        rule = next((r for r in limits.per_case if r.matches(category, tier)), None)
        if rule is None or role not in rule.limits:
            scope = "" if rule is None else rule.describe()
            return Allowance(Decimal(0), f"no {role} limit is set in {currency} for this case{scope}")
        limit = rule.limits[role]
        name = f"the {role} limit{rule.describe()}"
        return _unlimited(name) if limit is None else Allowance(limit, f"{name} of {plain(limit)} {currency}")

    def per_customer(self, currency: str) -> Allowance:
        window = f"{self.customer_window.days} days"
        limits = self.currencies.get(currency)
        if limits is None:
            return Allowance(Decimal(0), f"no customer limit is set in {currency}")
        if limits.per_customer is None:
            return _unlimited(f"the customer limit in {currency}")
        return Allowance(
            limits.per_customer,
            f"the customer limit of {plain(limits.per_customer)} {currency} in {window}",
        )

    def per_actor_per_day(self, role: str, currency: str) -> Allowance:
        limits = self.currencies.get(currency)
        if limits is None or role not in limits.per_actor_per_day:
            return Allowance(Decimal(0), f"no daily {role} limit is set in {currency}")
        limit = limits.per_actor_per_day[role]
        if limit is None:
            return _unlimited(f"the daily {role} limit in {currency}")
        return Allowance(limit, f"the daily {role} limit of {plain(limit)} {currency}")
