"""The replay's per-scope trail (service/domain/surge_trail.py): the window's customers exactly, all that the
baseline can see kept, and a bound of the baseline's pairs that never exceeds them and is close on steady
traffic, held to a brute-force count by Hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.incidents import GroupKey, SurgeRule, baseline_of, customers_in_window
from service.domain.surge_trail import GRID, SurgeTrail

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def pairs(sightings: list[tuple[datetime, str]], end: datetime, window: timedelta, windows: int) -> int:
    """The baseline's pairs the slow way: distinct customers in each bucket (end - (j + 1) w, end - j w]."""
    return sum(
        len({c for at, c in sightings if end - (j + 1) * window < at <= end - j * window})
        for j in range(1, windows + 1)
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=4 * 10**9), st.sampled_from(["a", "b", "c", "d", "e"])),
        max_size=80,
    ),
    st.integers(min_value=60 * 10**6, max_value=10**9 + 7),  # a window of a minute to about 17, to the us
    st.integers(min_value=1, max_value=5),
)
def test_the_bound_never_exceeds_the_pairs_and_the_window_and_history_are_exact(
    offsets: list[tuple[int, str]], window_us: int, windows: int
) -> None:
    window = timedelta(microseconds=window_us)
    trail = SurgeTrail(window, windows)
    rule = SurgeRule(
        name="r",
        group_by=(GroupKey.REGION,),
        window=window,
        min_customers=2,
        baseline_multiple=1,
        baseline_period=window * windows,
    )
    done: list[tuple[datetime, str]] = []
    for us, customer in sorted(offsets):
        at = T0 + timedelta(microseconds=us)
        trail.add(at, customer)
        done.append((at, customer))
        assert trail.window_customers() == len(customers_in_window(done, at, window))
        exact = pairs(done, at, window, windows)
        assert 0 <= trail.pairs_at_least() <= exact
        kept = list(trail.seen)
        assert baseline_of(rule, kept, at - window + TICK) == baseline_of(rule, done, at - window + TICK)
        assert len(kept) <= len(done)


def test_on_steady_traffic_the_bound_is_within_a_step_of_the_pairs_and_the_trail_a_period_long() -> None:
    window, windows = timedelta(minutes=15), 96  # a day of quarter hours
    trail = SurgeTrail(window, windows)
    done: list[tuple[datetime, str]] = []
    for n in range(3 * 24 * 60):  # a new customer a minute, three days
        at = T0 + timedelta(minutes=n, seconds=17)
        trail.add(at, f"c{n}")
        done.append((at, f"c{n}"))
    exact = pairs(done, done[-1][0], window, windows)
    assert exact == 15 * windows
    assert trail.pairs_at_least() >= exact * (GRID - 1) / GRID - windows
    assert len(trail.seen) == 15 * (windows + 1)  # the period and the window, nothing older
    assert trail.window_customers() == 15
