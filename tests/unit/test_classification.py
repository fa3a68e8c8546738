"""Unit tests for the signal classifier: pure rules over the packaged default policy."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.adapters.sentiment import VaderSentiment
from service.domain.severity import (
    Classification,
    CustomerHistory,
    Policy,
    Severity,
    classify,
    detect_category,
    load_default_policy,
    mentions,
)
from service.domain.signals import Category, Money, Signal, SignalKind, TicketPriority, Tier

POLICY = load_default_policy()
NO_HISTORY = CustomerHistory()
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def make_signal(kind: SignalKind = SignalKind.COMPLAINT, **fields: Any) -> Signal:
    """A valid signal of the given kind; keyword arguments override any field."""
    base: dict[str, Any] = {
        "source": "test",
        "id": "sig-1",
        "kind": kind,
        "occurred_at": NOW,
        "received_at": NOW,
        "customer_id": "cust-1",
    }
    return Signal(**{**base, **fields})


def run(
    signal: Signal, history: CustomerHistory = NO_HISTORY, sentiment: float | None = None
) -> Classification:
    return classify(signal, history, POLICY, sentiment)


def nps(score: int, **fields: Any) -> Classification:
    return run(make_signal(SignalKind.NPS, score=score, **fields))


def review(rating: int, **fields: Any) -> Classification:
    return run(make_signal(SignalKind.REVIEW, rating=rating, **fields))


def ticket(**fields: Any) -> Classification:
    return run(make_signal(SignalKind.TICKET, **fields))


def usd(amount: str, currency: str = "USD") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


@pytest.fixture(scope="module")
def vader() -> VaderSentiment:
    return VaderSentiment()


# --- NPS bands -------------------------------------------------------------------------------------


def test_nps_zero_is_major() -> None:
    assert nps(0).severity is Severity.MAJOR


def test_nps_three_is_major() -> None:
    result = nps(3)
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("nps:0-3",)


def test_nps_four_is_moderate() -> None:
    result = nps(4)
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("nps:4-5",)


def test_nps_five_is_moderate() -> None:
    assert nps(5).severity is Severity.MODERATE


def test_nps_six_is_minor() -> None:
    result = nps(6)
    assert result.severity is Severity.MINOR
    assert result.reasons == ("nps:6",)


def test_nps_seven_is_not_a_failure() -> None:
    result = nps(7)
    assert result.severity is None
    assert result.reasons == ("nps:7-10",)


def test_nps_ten_is_not_a_failure() -> None:
    assert nps(10).severity is None


def test_nps_without_a_score_falls_back_to_the_minor_default() -> None:
    result = run(make_signal(SignalKind.NPS))
    assert result.severity is Severity.MINOR
    assert result.reasons == ("nps:default",)


# --- review ratings --------------------------------------------------------------------------------


def test_review_rating_one_is_major() -> None:
    result = review(1)
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("rating:1",)


def test_review_rating_two_is_moderate() -> None:
    result = review(2)
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("rating:2",)


def test_review_rating_three_is_minor() -> None:
    result = review(3)
    assert result.severity is Severity.MINOR
    assert result.reasons == ("rating:3",)


def test_review_rating_four_is_not_a_failure() -> None:
    result = review(4)
    assert result.severity is None
    assert result.reasons == ("rating:4-5",)


def test_review_rating_five_is_not_a_failure() -> None:
    assert review(5).severity is None


# --- tickets ---------------------------------------------------------------------------------------


def test_urgent_ticket_is_major() -> None:
    result = ticket(priority=TicketPriority.URGENT)
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("ticket:priority_urgent",)


def test_high_priority_ticket_is_moderate() -> None:
    result = ticket(priority=TicketPriority.HIGH)
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("ticket:priority_high",)


def test_normal_priority_ticket_is_minor() -> None:
    result = ticket(priority=TicketPriority.NORMAL)
    assert result.severity is Severity.MINOR
    assert result.reasons == ("ticket:default",)


def test_low_priority_ticket_is_minor() -> None:
    assert ticket(priority=TicketPriority.LOW).severity is Severity.MINOR


def test_ticket_without_priority_is_minor() -> None:
    assert ticket().severity is Severity.MINOR


def test_escalated_ticket_is_major() -> None:
    result = ticket(priority=TicketPriority.LOW, escalated=True)
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("ticket:escalated",)


def test_escalated_high_priority_ticket_is_major_and_names_both_rules() -> None:
    result = ticket(priority=TicketPriority.HIGH, escalated=True)
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("ticket:priority_high", "ticket:escalated")


# --- billing ---------------------------------------------------------------------------------------


def test_billing_error_of_exactly_500_is_major() -> None:
    result = run(make_signal(category=Category.BILLING_ERROR, amount_at_stake=usd("500")))
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("billing:large_amount",)


def test_billing_error_of_499_99_is_minor() -> None:
    result = run(make_signal(category=Category.BILLING_ERROR, amount_at_stake=usd("499.99")))
    assert result.severity is Severity.MINOR
    assert result.reasons == ("complaint:default",)


def test_billing_threshold_is_read_in_the_signals_own_currency() -> None:
    result = run(make_signal(category=Category.BILLING_ERROR, amount_at_stake=usd("500", "EUR")))
    assert result.severity is Severity.MAJOR


def test_billing_error_detected_from_text_counts() -> None:
    result = run(make_signal(text="I was charged twice for one visit", amount_at_stake=usd("750")))
    assert result.category is Category.BILLING_ERROR
    assert result.severity is Severity.MAJOR


def test_billing_error_without_an_amount_is_minor() -> None:
    assert run(make_signal(category=Category.BILLING_ERROR)).severity is Severity.MINOR


def test_large_amount_outside_billing_is_not_the_billing_rule() -> None:
    result = run(make_signal(category=Category.SERVICE_DELAY, amount_at_stake=usd("5000")))
    assert result.severity is Severity.MINOR
    assert "billing:large_amount" not in result.reasons


def test_billing_threshold_comes_from_the_policy() -> None:
    policy = POLICY.model_copy(update={"billing_error_min_amount": Decimal("1000")})
    signal = make_signal(category=Category.BILLING_ERROR, amount_at_stake=usd("999"))
    assert classify(signal, NO_HISTORY, policy, None).severity is Severity.MINOR


# --- callbacks -------------------------------------------------------------------------------------


def test_callback_without_text_is_a_failed_repair_and_major() -> None:
    result = run(make_signal(SignalKind.CALLBACK, original_job_id="job-1", days_since_visit=3))
    assert result.category is Category.FAILED_REPAIR
    assert result.severity is Severity.MAJOR
    assert result.reasons == ("callback:failed_repair",)


def test_callback_saying_it_is_broken_again_is_major() -> None:
    result = run(make_signal(SignalKind.CALLBACK, text="Dishwasher is broken again"))
    assert result.category is Category.FAILED_REPAIR
    assert result.severity is Severity.MAJOR


def test_callback_with_unrecognised_text_is_a_failed_repair() -> None:
    result = run(make_signal(SignalKind.CALLBACK, text="Please come back tomorrow"))
    assert result.category is Category.FAILED_REPAIR
    assert result.severity is Severity.MAJOR


def test_callback_clearly_about_rude_staff_is_minor() -> None:
    result = run(make_signal(SignalKind.CALLBACK, text="The technician was rude to my mother"))
    assert result.category is Category.STAFF_CONDUCT
    assert result.severity is Severity.MINOR
    assert result.reasons == ("callback:other_category",)


def test_callback_with_a_given_other_category_is_minor() -> None:
    result = run(make_signal(SignalKind.CALLBACK, category=Category.COMMUNICATION))
    assert result.category is Category.COMMUNICATION
    assert result.severity is Severity.MINOR


def test_callback_about_a_gas_leak_is_critical() -> None:
    result = run(make_signal(SignalKind.CALLBACK, text="There is a gas leak since the visit"))
    assert result.category is Category.SAFETY
    assert result.severity is Severity.CRITICAL


# --- complaints and sentiment ----------------------------------------------------------------------


def test_plain_complaint_is_minor() -> None:
    result = run(make_signal(text="The technician was late"), sentiment=0.0)
    assert result.severity is Severity.MINOR
    assert result.reasons == ("complaint:default",)


def test_strongly_negative_complaint_is_moderate(vader: VaderSentiment) -> None:
    text = "Terrible, awful service. I am furious and disgusted."
    score = vader.compound(text)
    assert score is not None and score <= POLICY.strongly_negative_max_compound
    result = run(make_signal(text=text), sentiment=score)
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("sentiment:strongly_negative",)


def test_mildly_negative_complaint_stays_minor(vader: VaderSentiment) -> None:
    text = "I am disappointed"
    score = vader.compound(text)
    assert score is not None and POLICY.strongly_negative_max_compound < score < 0
    assert run(make_signal(text=text), sentiment=score).severity is Severity.MINOR


def test_sentiment_exactly_at_the_threshold_is_strongly_negative() -> None:
    result = run(make_signal(text="x"), sentiment=POLICY.strongly_negative_max_compound)
    assert result.severity is Severity.MODERATE


def test_sentiment_only_applies_to_complaints() -> None:
    result = run(make_signal(SignalKind.TICKET, text="awful"), sentiment=-0.95)
    assert result.severity is Severity.MINOR


def test_complaint_without_sentiment_is_minor() -> None:
    assert run(make_signal(), sentiment=None).severity is Severity.MINOR


# --- critical rules --------------------------------------------------------------------------------


def test_given_safety_category_is_critical() -> None:
    result = run(make_signal(category=Category.SAFETY))
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("category:safety",)


def test_given_property_damage_category_is_critical() -> None:
    result = run(make_signal(category=Category.PROPERTY_DAMAGE))
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("category:property_damage",)


@pytest.mark.parametrize(
    "text",
    [
        "My son was injured by a loose panel",
        "That wiring is a fire hazard",
        "I can smell gas in the kitchen",
        "There is a gas leak",
        "The basement flooded after the install",
        "Smoke came out of the dryer",
        "I nearly got electrocuted",
    ],
)
def test_safety_words_in_text_are_critical_safety(text: str) -> None:
    result = run(make_signal(text=text))
    assert result.category is Category.SAFETY
    assert result.severity is Severity.CRITICAL
    assert "text:safety" in result.reasons


def test_damage_words_in_text_are_critical_property_damage() -> None:
    result = run(make_signal(text="They scratched my new floor"))
    assert result.category is Category.PROPERTY_DAMAGE
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("text:property_damage",)


@pytest.mark.parametrize(
    "text",
    [
        "My lawyer will hear about this",
        "I have called an attorney",
        "Expect a lawsuit",
        "I will sue you",
        "We are suing the company",
        "I am considering legal action",
    ],
)
def test_a_legal_threat_is_critical(text: str) -> None:
    result = run(make_signal(text=text))
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("text:legal_threat",)


def test_critical_text_overrides_a_promoter_nps() -> None:
    result = nps(9, text="Great tech, but he left a gas leak")
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("text:safety", "nps:7-10")


def test_critical_text_overrides_a_five_star_review() -> None:
    result = review(5, text="Lovely people, though they damaged the wall")
    assert result.severity is Severity.CRITICAL


def test_a_legal_threat_overrides_not_a_failure() -> None:
    assert nps(10, text="Fine, but my attorney disagrees").severity is Severity.CRITICAL


def test_critical_text_counts_even_when_another_category_is_given() -> None:
    result = run(make_signal(category=Category.BILLING_ERROR, text="Also there is smoke from the boiler"))
    assert result.category is Category.BILLING_ERROR
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("text:safety",)


def test_critical_beats_a_lower_severity_rule() -> None:
    result = nps(2, text="They flooded my kitchen")
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("text:safety", "nps:0-3")


# --- word boundaries and matching ------------------------------------------------------------------


def test_gas_does_not_match_vegas() -> None:
    result = nps(9, text="Booked while on holiday in Vegas")
    assert result.severity is None
    assert result.category is Category.OTHER


def test_sue_does_not_match_issue() -> None:
    result = run(make_signal(text="A small issue with the visit"))
    assert result.severity is Severity.MINOR
    assert "text:legal_threat" not in result.reasons


def test_late_does_not_match_chocolate() -> None:
    assert detect_category("They left chocolate wrappers", POLICY) is Category.OTHER


def test_fire_does_not_match_fired() -> None:
    assert not mentions("I fired the contractor", ("fire",))


def test_keywords_match_case_insensitively() -> None:
    assert run(make_signal(text="GAS LEAK in the hallway")).severity is Severity.CRITICAL


def test_phrases_match_across_extra_whitespace() -> None:
    assert detect_category("we never\nheard   back", POLICY) is Category.COMMUNICATION


def test_keywords_match_next_to_punctuation() -> None:
    assert mentions("Lawsuit!", POLICY.legal_keywords)


def test_mentions_is_false_for_no_text() -> None:
    assert not mentions(None, POLICY.legal_keywords)


# --- category detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The crew arrived three hours late", Category.SERVICE_DELAY),
        ("I waited all morning", Category.SERVICE_DELAY),
        ("Another no-show today", Category.MISSED_APPOINTMENT),
        ("The plumber never showed", Category.MISSED_APPOINTMENT),
        ("Heater is still not working", Category.FAILED_REPAIR),
        ("Leak not fixed", Category.FAILED_REPAIR),
        ("The part you installed is defective", Category.PRODUCT_DEFECT),
        ("Faulty thermostat", Category.PRODUCT_DEFECT),
        ("The installer was unprofessional", Category.STAFF_CONDUCT),
        ("I was overcharged", Category.BILLING_ERROR),
        ("The invoice is wrong", Category.BILLING_ERROR),
        ("There is a stain on the carpet", Category.PROPERTY_DAMAGE),
        ("There is a fire hazard", Category.SAFETY),
        ("No one called me", Category.COMMUNICATION),
        ("Still no response to my email", Category.COMMUNICATION),
        ("Very disappointed overall", Category.UNMET_EXPECTATION),
        ("Not what I expected", Category.UNMET_EXPECTATION),
        ("Something about the colour", Category.OTHER),
    ],
)
def test_category_is_detected_from_text(text: str, category: Category) -> None:
    assert run(make_signal(text=text)).category is category


def test_every_category_has_a_keyword_list_in_the_policy() -> None:
    assert {entry.category for entry in POLICY.category_keywords} == set(Category)


def test_a_given_category_wins_over_text() -> None:
    result = run(make_signal(category=Category.STAFF_CONDUCT, text="They were late"))
    assert result.category is Category.STAFF_CONDUCT


def test_no_text_and_no_category_is_other() -> None:
    assert run(make_signal()).category is Category.OTHER


def test_the_earlier_category_in_the_policy_wins_a_tie() -> None:
    assert detect_category("No one called to say they would be late", POLICY) is Category.COMMUNICATION


# --- modifiers -------------------------------------------------------------------------------------


def test_platinum_tier_raises_one_level() -> None:
    result = run(make_signal(customer_tier=Tier.PLATINUM))
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("complaint:default", "modifier:platinum_tier")


def test_gold_tier_does_not_raise() -> None:
    assert run(make_signal(customer_tier=Tier.GOLD)).severity is Severity.MINOR


def test_third_failure_in_the_window_raises_one_level() -> None:
    result = run(make_signal(), CustomerHistory(prior_failures_in_window=2))
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("complaint:default", "modifier:repeat_failures")


def test_second_failure_in_the_window_does_not_raise() -> None:
    assert run(make_signal(), CustomerHistory(prior_failures_in_window=1)).severity is Severity.MINOR


def test_a_case_reopened_twice_raises_one_level() -> None:
    result = run(make_signal(), CustomerHistory(reopen_count=2))
    assert result.severity is Severity.MODERATE
    assert result.reasons == ("complaint:default", "modifier:repeat_reopens")


def test_a_case_reopened_once_does_not_raise() -> None:
    assert run(make_signal(), CustomerHistory(reopen_count=1)).severity is Severity.MINOR


def test_two_modifiers_stack() -> None:
    result = run(make_signal(customer_tier=Tier.PLATINUM), CustomerHistory(reopen_count=3))
    assert result.severity is Severity.MAJOR


def test_three_modifiers_raise_minor_to_critical() -> None:
    history = CustomerHistory(prior_failures_in_window=5, reopen_count=2)
    result = run(make_signal(customer_tier=Tier.PLATINUM), history)
    assert result.severity is Severity.CRITICAL


def test_modifiers_are_capped_at_critical() -> None:
    history = CustomerHistory(prior_failures_in_window=2, reopen_count=2)
    result = run(make_signal(SignalKind.NPS, score=1, customer_tier=Tier.PLATINUM), history)
    assert result.severity is Severity.CRITICAL
    assert result.reasons[1:] == (
        "modifier:platinum_tier",
        "modifier:repeat_failures",
        "modifier:repeat_reopens",
    )


def test_a_critical_signal_stays_critical_and_still_names_the_modifier() -> None:
    result = run(make_signal(category=Category.SAFETY, customer_tier=Tier.PLATINUM))
    assert result.severity is Severity.CRITICAL
    assert result.reasons == ("category:safety", "modifier:platinum_tier")


def test_modifiers_do_not_apply_to_a_non_failure() -> None:
    history = CustomerHistory(prior_failures_in_window=9, reopen_count=9)
    result = run(make_signal(SignalKind.NPS, score=9, customer_tier=Tier.PLATINUM), history)
    assert result.severity is None
    assert result.reasons == ("nps:7-10",)


def test_history_counts_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        CustomerHistory(prior_failures_in_window=-1)


# --- reasons and policy ----------------------------------------------------------------------------


def test_reasons_name_every_rule_that_fired() -> None:
    signal = make_signal(
        SignalKind.TICKET,
        priority=TicketPriority.URGENT,
        escalated=True,
        category=Category.BILLING_ERROR,
        amount_at_stake=usd("800"),
        customer_tier=Tier.PLATINUM,
        text="There is smoke and my lawyer is involved",
    )
    result = run(signal, CustomerHistory(prior_failures_in_window=2, reopen_count=2))
    assert result.severity is Severity.CRITICAL
    assert result.reasons == (
        "text:safety",
        "text:legal_threat",
        "ticket:priority_urgent",
        "ticket:escalated",
        "billing:large_amount",
        "modifier:platinum_tier",
        "modifier:repeat_failures",
        "modifier:repeat_reopens",
    )


def test_policy_version_is_recorded() -> None:
    packaged = resources.files("service.domain").joinpath("policy.json").read_text(encoding="utf-8")
    version = json.loads(packaged)["version"]
    assert version == "2026-11-22.1"
    assert run(make_signal()).policy_version == version
    assert nps(9).policy_version == version


def test_a_different_policy_version_is_recorded() -> None:
    policy = POLICY.model_copy(update={"version": "test-2"})
    assert classify(make_signal(), NO_HISTORY, policy, None).policy_version == "test-2"


def test_the_default_history_window_is_thirty_days() -> None:
    assert POLICY.history_window_days == 30


def test_the_policy_rejects_overlapping_bands() -> None:
    data = POLICY.model_dump(mode="json")
    data["nps_bands"].append({"low": 3, "high": 4, "severity": "minor"})
    with pytest.raises(ValidationError, match="overlap"):
        Policy.model_validate(data)


def test_the_policy_rejects_a_missing_category() -> None:
    data = POLICY.model_dump(mode="json")
    data["category_keywords"] = [e for e in data["category_keywords"] if e["category"] != "safety"]
    with pytest.raises(ValidationError, match="safety"):
        Policy.model_validate(data)


def test_classification_is_immutable() -> None:
    result = run(make_signal())
    with pytest.raises(FrozenInstanceError):
        result.severity = Severity.CRITICAL  # type: ignore[misc]


# --- the VADER adapter -----------------------------------------------------------------------------


def test_vader_gives_no_score_without_text(vader: VaderSentiment) -> None:
    assert vader.compound(None) is None
    assert vader.compound("   ") is None


def test_vader_scores_positive_text_above_zero(vader: VaderSentiment) -> None:
    score = vader.compound("Wonderful, friendly and fast. Thank you!")
    assert score is not None and 0 < score <= 1


# --- properties ------------------------------------------------------------------------------------

TEXTS = [
    None,
    "",
    "The technician was late.",
    "Terrible, awful service, I am furious.",
    "We had fun in Vegas.",
    "A small issue with the invoice.",
    "It is still not working.",
    "Nobody called.",
]
CRITICAL_TEXTS = [
    "They damaged my floor.",
    "There is a gas leak.",
    "I will sue you.",
    "Smoke everywhere, call my attorney.",
]
NON_CRITICAL_CATEGORIES = [c for c in Category if c not in POLICY.critical_categories]

histories = st.builds(
    CustomerHistory,
    prior_failures_in_window=st.integers(0, 10),
    reopen_count=st.integers(0, 10),
)
sentiments = st.none() | st.floats(-1.0, 1.0)
signals = st.builds(
    make_signal,
    kind=st.sampled_from(SignalKind),
    text=st.sampled_from(TEXTS + CRITICAL_TEXTS),
    category=st.none() | st.sampled_from(Category),
    score=st.none() | st.integers(0, 10),
    rating=st.none() | st.integers(1, 5),
    priority=st.none() | st.sampled_from(TicketPriority),
    escalated=st.booleans(),
    amount_at_stake=st.none() | st.builds(usd, st.sampled_from(["0", "499.99", "500", "1200"])),
    customer_tier=st.sampled_from(Tier),
)
non_failures = st.one_of(
    st.builds(make_signal, kind=st.just(SignalKind.NPS), score=st.integers(7, 10)),
    st.builds(make_signal, kind=st.just(SignalKind.REVIEW), rating=st.integers(4, 5)),
)


def rank(severity: Severity | None) -> int:
    return -1 if severity is None else severity.rank


@given(signals, histories, histories, sentiments)
def test_more_history_never_lowers_severity(
    signal: Signal, first: CustomerHistory, second: CustomerHistory, sentiment: float | None
) -> None:
    less = CustomerHistory(
        prior_failures_in_window=min(first.prior_failures_in_window, second.prior_failures_in_window),
        reopen_count=min(first.reopen_count, second.reopen_count),
    )
    more = CustomerHistory(
        prior_failures_in_window=max(first.prior_failures_in_window, second.prior_failures_in_window),
        reopen_count=max(first.reopen_count, second.reopen_count),
    )
    assert rank(run(signal, less, sentiment).severity) <= rank(run(signal, more, sentiment).severity)


@given(signals, histories, sentiments)
def test_severity_with_modifiers_is_never_below_the_base(
    signal: Signal, history: CustomerHistory, sentiment: float | None
) -> None:
    plain = replace(signal, customer_tier=Tier.STANDARD)
    base = run(plain, NO_HISTORY, sentiment)
    modified = run(signal, history, sentiment)
    modifiers = [r for r in modified.reasons if r.startswith("modifier:")]
    if base.severity is None:
        assert modified.severity is None
        assert modifiers == []
    else:
        assert modified.severity is not None and modified.severity >= base.severity
        assert modified.severity is base.severity.raised(len(modifiers))
        assert modified.category is base.category


@given(
    non_failures,
    st.sampled_from(TEXTS + CRITICAL_TEXTS),
    st.none() | st.sampled_from(NON_CRITICAL_CATEGORIES),
    st.sampled_from(Tier),
    histories,
    sentiments,
)
def test_not_a_failure_stays_none_whatever_the_history_unless_a_critical_text_rule_fires(
    signal: Signal,
    text: str | None,
    category: Category | None,
    tier: Tier,
    history: CustomerHistory,
    sentiment: float | None,
) -> None:
    signal = replace(signal, text=text, category=category, customer_tier=tier)
    expected = Severity.CRITICAL if text in CRITICAL_TEXTS else None
    assert run(signal, history, sentiment).severity is expected
