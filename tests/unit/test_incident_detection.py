"""Surge detection (service/domain/incidents.py): window edges, distinct customers, the baseline, one incident per
scope, held against a brute-force count by Hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.domain.incidents import (
    DEFAULT_SURGE,
    GroupKey,
    IncidentPolicy,
    Sighting,
    SurgeRule,
    baseline_of,
    crossed,
    customers_in_window,
    incident_id,
    replay,
    scope_of,
    scope_text,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULE = SurgeRule(
    name="tight",
    group_by=(GroupKey.SERVICE, GroupKey.REGION),
    window=timedelta(minutes=10),
    min_customers=3,
    baseline_multiple=2,
    baseline_period=timedelta(minutes=40),
)


def seen(minutes: float, customer: str, service: str = "broadband", region: str | None = "north") -> Sighting:
    return Sighting(T0 + timedelta(minutes=minutes), customer, "complaint", "other", service, region)


def test_the_default_rule_is_the_issues_twenty_customers_in_fifteen_minutes_at_five_times_the_baseline() -> None:
    assert IncidentPolicy().surges == (DEFAULT_SURGE,)
    assert (DEFAULT_SURGE.group_by, DEFAULT_SURGE.window) == ((GroupKey.SERVICE, GroupKey.REGION), timedelta(minutes=15))
    assert (DEFAULT_SURGE.min_customers, DEFAULT_SURGE.baseline_multiple) == (20, 5)
    assert DEFAULT_SURGE.on_crossing == "declare" and DEFAULT_SURGE.baseline_windows == 7 * 24 * 4


def test_a_signal_without_one_of_the_rules_keys_has_no_scope() -> None:
    assert scope_of(RULE, seen(0, "c1")) == (("service", "broadband"), ("region", "north"))
    assert scope_of(RULE, seen(0, "c1", region=None)) is None


def test_the_window_holds_what_came_after_its_start_and_up_to_its_end() -> None:
    window = timedelta(minutes=10)
    sightings = [(T0, "a"), (T0 + timedelta(microseconds=1), "b"), (T0 + window, "c"), (T0 + window * 2, "d")]
    assert customers_in_window(sightings, T0 + window, window) == {"b", "c"}


def test_the_same_customer_again_and_again_is_one_customer() -> None:
    many = [seen(i / 10, "c1") for i in range(50)] + [seen(5, "c2")]
    assert replay(IncidentPolicy(surges=(RULE,)), many) == []
    fired = replay(IncidentPolicy(surges=(RULE,)), [*many, seen(6, "c3")])
    assert [(e.detection.customers, e.detection.baseline, e.type) for e in fired] == [(3, None, "incident.declared")]


def test_a_busy_scope_needs_its_multiple_of_the_baseline_and_a_quiet_one_the_floor_alone() -> None:
    # four customers in every 10-minute window of the 40 before (under the floor of 5): a baseline of 4, so
    # twice that, 8, are needed in the window
    policy = IncidentPolicy(surges=(RULE.model_copy(update={"min_customers": 5}),))
    usual = [seen(-49 + 10 * w + k, f"u{w}-{k}") for w in range(4) for k in range(4)]
    surge = [seen(k / 10, f"s{k}") for k in range(8)]
    assert replay(policy, [*usual, *surge[:7]]) == []
    [event] = replay(policy, [*usual, *surge])
    assert (event.detection.customers, event.detection.baseline) == (8, 4.0)
    elsewhere = [seen(k / 10, f"s{k}", region="south") for k in range(5)]
    [quiet] = replay(policy, [*usual, *elsewhere])
    assert quiet.scope == {"service": "broadband", "region": "south"} and quiet.detection.baseline is None


def test_a_scope_with_an_open_incident_fires_nothing_more() -> None:
    surge = [seen(k / 10, f"s{k}") for k in range(10)]
    [event] = replay(IncidentPolicy(surges=(RULE,)), surge)
    opened = scope_text(RULE.name, (("service", "broadband"), ("region", "north")))
    assert replay(IncidentPolicy(surges=(RULE,)), surge, open_scopes=[opened]) == []
    assert event.incident_id == incident_id(RULE.name, tuple(event.scope.items()), event.detection.window_start)


def test_a_rule_is_refused_naming_what_is_wrong() -> None:
    for bad, field in (
        ({"group_by": ["category"]}, "must include service or region"),
        ({"group_by": ["service", "service"]}, "named twice"),
        ({"window": "PT10S"}, "window"),
        ({"baseline_period": "PT5M"}, "baseline_period"),
        ({"min_customers": 1}, "min_customers"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(ValidationError, match=field):
            SurgeRule.model_validate({**RULE.model_dump(), **bad})
    with pytest.raises(ValidationError, match="same name"):
        IncidentPolicy(surges=(RULE, RULE))


def brute_force(
    rule: SurgeRule, sightings: list[Sighting], since: datetime | None = None
) -> list[tuple[datetime, int, float | None]]:
    """What should fire, counted the slow way: every sighting ends a window; buckets counted one by one."""
    fired: list[tuple[datetime, int, float | None]] = []
    done: set[tuple[tuple[str, str], ...]] = set()
    ordered = sorted(sightings, key=lambda s: s.at)
    for i, s in enumerate(ordered):
        scope = scope_of(rule, s)
        if scope is None or scope in done or (since is not None and s.at < since):
            continue
        same = [x for x in ordered[: i + 1] if scope_of(rule, x) == scope]
        customers = {x.customer_id for x in same if x.at > s.at - rule.window}
        start = s.at - rule.window  # the window is (start, s.at]
        n = rule.baseline_windows
        buckets = [
            {
                x.customer_id
                for x in same
                if start - (n - k) * rule.window < x.at <= start - (n - k - 1) * rule.window
            }
            for k in range(n)
        ]
        base = sum(len(b) for b in buckets) / n if any(buckets) else None
        if crossed(rule, len(customers), base):
            fired.append((s.at, len(customers), base))
            done.add(scope)
    return fired


SIGHTINGS = st.lists(
    st.builds(
        seen,
        st.integers(min_value=-60 * 60, max_value=30 * 60).map(lambda s: s / 60),  # whole seconds, in minutes
        st.sampled_from([f"c{i}" for i in range(8)]),
        st.just("broadband"),
        st.sampled_from(["north", "south", None]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(SIGHTINGS, st.integers(min_value=2, max_value=5), st.sampled_from([0, 1, 1.5, 3]))
def test_replay_fires_exactly_where_the_slow_count_crosses(
    sightings: list[Sighting], floor: int, multiple: float
) -> None:
    rule = RULE.model_copy(update={"min_customers": floor, "baseline_multiple": multiple})
    fired = replay(IncidentPolicy(surges=(rule,)), sightings)
    why = [e.detection for e in fired]
    assert [(d.window_end, d.customers, d.baseline) for d in why] == brute_force(rule, sightings)
    for d in why:  # every event says why: the rule's floor and multiple, the count, the baseline
        assert d.customers >= d.min_customers == floor and d.baseline_multiple == multiple


@settings(max_examples=200, deadline=None)
@given(SIGHTINGS)
def test_the_baseline_is_the_mean_of_distinct_customers_per_window_before_it(sightings: list[Sighting]) -> None:
    start = T0
    pairs = [(s.at, s.customer_id) for s in sightings]
    got = baseline_of(RULE, pairs, start)
    n = RULE.baseline_windows
    buckets = [
        {c for at, c in pairs if start - (n - k) * RULE.window <= at < start - (n - k - 1) * RULE.window}
        for k in range(n)
    ]
    assert got == (sum(len(b) for b in buckets) / n if any(buckets) else None)


@settings(max_examples=200, deadline=None)
@given(SIGHTINGS, st.integers(min_value=-30, max_value=30), st.sampled_from([0, 1.5, 3]))
def test_sightings_before_since_fill_windows_and_baselines_but_fire_nothing(
    sightings: list[Sighting], since_minute: int, multiple: float
) -> None:
    rule = RULE.model_copy(update={"min_customers": 3, "baseline_multiple": multiple})
    since = T0 + timedelta(minutes=since_minute)
    fired = replay(IncidentPolicy(surges=(rule,)), sightings, since=since)
    why = [(e.detection.window_end, e.detection.customers, e.detection.baseline) for e in fired]
    assert why == brute_force(rule, sightings, since)
    assert all(e.detection.window_end >= since for e in fired)


def test_a_surge_that_began_before_since_fires_at_since_counted_with_what_came_before() -> None:
    surge = [seen(k, f"s{k}") for k in range(6)]  # 09:00 to 09:05, three customers by 09:02
    [early] = replay(IncidentPolicy(surges=(RULE,)), surge)
    [late] = replay(IncidentPolicy(surges=(RULE,)), surge, since=T0 + timedelta(minutes=4))
    assert early.detection.window_end == T0 + timedelta(minutes=2) and early.detection.customers == 3
    assert late.detection.window_end == T0 + timedelta(minutes=4) and late.detection.customers == 5


# A window that is no whole number of the trail's grid steps, a period that is no whole number of windows.
ODD = SurgeRule(
    name="odd",
    group_by=(GroupKey.REGION,),
    window=timedelta(minutes=7, seconds=30, microseconds=3),
    min_customers=2,
    baseline_multiple=1.5,
    baseline_period=timedelta(minutes=31),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda us, c: Sighting(T0 + timedelta(microseconds=us), c, "complaint", "other", None, "north"),
            st.integers(min_value=0, max_value=50 * 60 * 10**6),
            st.sampled_from([f"c{i}" for i in range(5)]),
        ),
        max_size=60,
    )
)
def test_replay_fires_where_the_slow_count_crosses_for_windows_to_the_microsecond(
    sightings: list[Sighting],
) -> None:
    fired = replay(IncidentPolicy(surges=(ODD,)), sightings)
    why = [(e.detection.window_end, e.detection.customers, e.detection.baseline) for e in fired]
    assert why == brute_force(ODD, sightings)
