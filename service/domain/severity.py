"""Severity levels; the classification policy and classify() live here too."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property, lru_cache
from importlib import resources
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.domain.signals import Category, Signal, SignalKind, TicketPriority, Tier


class Severity(StrEnum):
    MINOR = "minor"
    MODERATE = "moderate"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def raised(self, levels: int = 1) -> Severity:
        """One level up per modifier, capped at critical."""
        return _ORDER[min(self.rank + levels, len(_ORDER) - 1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_ORDER = [Severity.MINOR, Severity.MODERATE, Severity.MAJOR, Severity.CRITICAL]
_RANK = {severity: rank for rank, severity in enumerate(_ORDER)}


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """What the caller knows about the customer when the signal arrives."""

    prior_failures_in_window: int = 0  # excluding this signal
    reopen_count: int = 0  # counting a reopen this signal causes

    def __post_init__(self) -> None:
        if self.prior_failures_in_window < 0 or self.reopen_count < 0:
            raise ValueError("history counts cannot be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """The outcome of classifying one signal; severity None means it is not a failure."""

    severity: Severity | None
    category: Category
    reasons: tuple[str, ...]
    policy_version: str


class Band(BaseModel):
    """An inclusive score range and the severity it means (None = not a failure)."""

    model_config = ConfigDict(frozen=True)

    low: int
    high: int
    severity: Severity | None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low > self.high:
            raise ValueError(f"band {self.low}-{self.high} is empty")
        return self

    @property
    def label(self) -> str:
        """The band as it appears in a reason: '0-3', or '6' for a single value."""
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


class CategoryKeywords(BaseModel):
    """The words and phrases that reveal a category in free text."""

    model_config = ConfigDict(frozen=True)

    category: Category
    keywords: tuple[str, ...]


class Modifiers(BaseModel):
    """When a failure is raised one level (each modifier once, capped at critical)."""

    model_config = ConfigDict(frozen=True)

    tiers: frozenset[Tier]
    min_prior_failures_in_window: int = Field(ge=1)
    min_reopen_count: int = Field(ge=1)


class Policy(BaseModel):
    """The classification rules as data; category_keywords order is detection precedence."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(min_length=1)
    history_window_days: int = Field(default=30, gt=0)
    critical_categories: frozenset[Category]
    legal_keywords: tuple[str, ...]
    category_keywords: tuple[CategoryKeywords, ...]
    nps_bands: tuple[Band, ...]
    rating_bands: tuple[Band, ...]
    ticket_priority_severity: dict[TicketPriority, Severity]
    escalated_severity: Severity
    callback_failed_repair_severity: Severity
    billing_error_min_amount: Decimal = Field(gt=0)
    billing_error_severity: Severity
    strongly_negative_max_compound: float = Field(ge=-1.0, le=1.0)
    strongly_negative_severity: Severity
    default_severity: Severity
    modifiers: Modifiers

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        listed = [entry.category for entry in self.category_keywords]
        if len(listed) != len(set(listed)):
            raise ValueError("a category is listed twice in category_keywords")
        missing = set(Category) - {Category.OTHER} - set(listed)
        if missing:
            raise ValueError(f"category_keywords lacks {sorted(missing)}")
        _check_disjoint("nps_bands", self.nps_bands)
        _check_disjoint("rating_bands", self.rating_bands)
        return self

    @cached_property
    def every_keyword(self) -> tuple[str, ...]:
        """All keywords of every category and the legal ones: one search tells whether any rule can fire."""
        return tuple(kw for entry in self.category_keywords for kw in entry.keywords) + self.legal_keywords


def _check_disjoint(name: str, bands: Iterable[Band]) -> None:
    ordered = sorted(bands, key=lambda band: band.low)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.low <= before.high:
            raise ValueError(f"{name} overlap at {after.low}")


def load_default_policy() -> Policy:
    """The default policy is the policy.json packaged with the domain."""
    text = resources.files("service.domain").joinpath("policy.json").read_text(encoding="utf-8")
    return Policy.model_validate_json(text)


class _Fired(NamedTuple):
    reason: str
    severity: Severity | None  # None: the rule says "not a failure"


@lru_cache(maxsize=256)
def _pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    phrases = sorted((r"\s+".join(map(re.escape, kw.split())) for kw in keywords), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def mentions_any(text: str | None, policy: Policy) -> bool:
    """Whether the text holds any keyword of the policy at all: most texts hold none, and one search says so."""
    return mentions(text, policy.every_keyword)


def mentions(text: str | None, keywords: tuple[str, ...]) -> bool:
    """Text mentions a keyword when it holds it as a whole word or phrase, ignoring case."""
    pattern = _pattern(keywords)
    return text is not None and pattern is not None and pattern.search(text) is not None


def detect_category(text: str | None, policy: Policy) -> Category:
    """The first category, in policy order, whose keywords the text mentions; other when none."""
    for entry in policy.category_keywords:
        if mentions(text, entry.keywords):
            return entry.category
    return Category.OTHER


def category_of(signal: Signal, policy: Policy, text: str | None) -> Category:
    """A given category wins; else it is detected from text; an undetected callback is a failed repair.

    `text` is the signal's text when it may hold a keyword (None when it holds none)."""
    if signal.category is not None:
        return signal.category
    detected = detect_category(text, policy)
    if signal.kind is SignalKind.CALLBACK and detected is Category.OTHER:
        return Category.FAILED_REPAIR
    return detected


def _critical_rules(signal: Signal, policy: Policy, text: str | None) -> list[_Fired]:
    fired: list[_Fired] = []
    if signal.category in policy.critical_categories:
        fired.append(_Fired(f"category:{signal.category}", Severity.CRITICAL))
    if text is None:
        return fired
    for entry in policy.category_keywords:
        if entry.category in policy.critical_categories and mentions(text, entry.keywords):
            fired.append(_Fired(f"text:{entry.category}", Severity.CRITICAL))
    if mentions(text, policy.legal_keywords):
        fired.append(_Fired("text:legal_threat", Severity.CRITICAL))
    return fired


def _band_rules(prefix: str, value: int | None, bands: tuple[Band, ...]) -> list[_Fired]:
    return [
        _Fired(f"{prefix}:{band.label}", band.severity)
        for band in bands
        if value is not None and band.low <= value <= band.high
    ]


def _ticket_rules(signal: Signal, policy: Policy) -> list[_Fired]:
    fired: list[_Fired] = []
    by_priority = policy.ticket_priority_severity
    if signal.priority in by_priority:
        fired.append(_Fired(f"ticket:priority_{signal.priority}", by_priority[signal.priority]))
    if signal.escalated:
        fired.append(_Fired("ticket:escalated", policy.escalated_severity))
    return fired


def _callback_rules(category: Category, policy: Policy) -> list[_Fired]:
    if category is Category.FAILED_REPAIR:
        return [_Fired("callback:failed_repair", policy.callback_failed_repair_severity)]
    return [_Fired("callback:other_category", policy.default_severity)]


def _complaint_rules(sentiment: float | None, policy: Policy) -> list[_Fired]:
    if sentiment is not None and sentiment <= policy.strongly_negative_max_compound:
        return [_Fired("sentiment:strongly_negative", policy.strongly_negative_severity)]
    return []


def _kind_rules(signal: Signal, category: Category, policy: Policy, sentiment: float | None) -> list[_Fired]:
    match signal.kind:
        case SignalKind.NPS:
            return _band_rules("nps", signal.score, policy.nps_bands)
        case SignalKind.REVIEW:
            return _band_rules("rating", signal.rating, policy.rating_bands)
        case SignalKind.TICKET:
            return _ticket_rules(signal, policy)
        case SignalKind.CALLBACK:
            return _callback_rules(category, policy)
        case SignalKind.COMPLAINT:
            return _complaint_rules(sentiment, policy)


def _billing_rules(signal: Signal, category: Category, policy: Policy) -> list[_Fired]:
    amount = signal.amount_at_stake.amount if signal.amount_at_stake is not None else None
    if (
        category is Category.BILLING_ERROR
        and amount is not None
        and amount >= policy.billing_error_min_amount
    ):
        return [_Fired("billing:large_amount", policy.billing_error_severity)]
    return []


def _base_rules(
    signal: Signal, text: str | None, category: Category, policy: Policy, sentiment: float | None
) -> list[_Fired]:
    fired = [
        *_critical_rules(signal, policy, text),
        *_kind_rules(signal, category, policy, sentiment),
        *_billing_rules(signal, category, policy),
    ]
    return fired or [_Fired(f"{signal.kind}:default", policy.default_severity)]


def _base_severity(fired: list[_Fired]) -> Severity | None:
    severities = [rule.severity for rule in fired]
    if Severity.CRITICAL in severities:
        return Severity.CRITICAL
    if None in severities:
        return None
    return max(severity for severity in severities if severity is not None)


def _modifier_reasons(signal: Signal, history: CustomerHistory, policy: Policy) -> list[str]:
    modifiers = policy.modifiers
    reasons: list[str] = []
    if signal.customer_tier in modifiers.tiers:
        reasons.append(f"modifier:{signal.customer_tier}_tier")
    if history.prior_failures_in_window >= modifiers.min_prior_failures_in_window:
        reasons.append("modifier:repeat_failures")
    if history.reopen_count >= modifiers.min_reopen_count:
        reasons.append("modifier:repeat_reopens")
    return reasons


def classify(
    signal: Signal, history: CustomerHistory, policy: Policy, sentiment: float | None
) -> Classification:
    """Critical rules beat everything, then not-a-failure, then the worst rule; modifiers raise failures."""
    # most texts hold no keyword at all: one search says so and skips the per-category searches
    text = signal.text if mentions_any(signal.text, policy) else None
    category = category_of(signal, policy, text)
    fired = _base_rules(signal, text, category, policy, sentiment)
    severity = _base_severity(fired)
    reasons = [rule.reason for rule in fired]
    if severity is not None:
        modifiers = _modifier_reasons(signal, history, policy)
        severity = severity.raised(len(modifiers))
        reasons.extend(modifiers)
    return Classification(
        severity=severity, category=category, reasons=tuple(reasons), policy_version=policy.version
    )
