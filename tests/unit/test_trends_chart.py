"""The trends chart's geometry and the window the page accepts: pure functions, no browser."""

from __future__ import annotations

from service.adapters.http.console.trends_page import LABELS, MAX_WINDOW_DAYS, chart, window_of
from service.domain.trends import TrendPolicy

POLICY = TrendPolicy(threshold=4)


def test_bars_are_proportional_and_the_threshold_stays_on_the_scale_when_every_count_is_below_it() -> None:
    drawn = chart([("scheduling", 2), ("other", 1)], POLICY)
    two, one = (b.width for b in drawn.bars)
    assert abs(two - 2 * one) <= 1  # rounded to whole units
    assert abs(drawn.threshold_x - LABELS - 2 * two) <= 1  # 4 is the longest the scale must show
    assert not any(b.trend for b in drawn.bars)


def test_a_count_at_the_threshold_is_a_trend_and_the_longest_bar_sets_the_scale() -> None:
    drawn = chart([("scheduling", 8), ("parts_quality", 4), ("other", 3)], POLICY)
    assert [b.trend for b in drawn.bars] == [True, True, False]
    assert abs((drawn.threshold_x - LABELS) - drawn.bars[0].width / 2) <= 1
    assert [b.y for b in drawn.bars] == sorted({b.y for b in drawn.bars})  # one row each, top to bottom
    assert drawn.height > drawn.bars[-1].y


def test_the_window_is_whole_days_within_bounds_or_the_default_with_the_reason() -> None:
    assert window_of("", 90) == (90, None)
    assert window_of("30", 90) == (30, None)
    assert window_of(str(MAX_WINDOW_DAYS), 90) == (MAX_WINDOW_DAYS, None)
    for bad in ("0", str(MAX_WINDOW_DAYS + 1), "-3", "2.5", "٣", "1e3", "x"):
        days, reason = window_of(bad, 90)
        assert days == 90 and reason is not None and "from 1 to" in reason, bad
