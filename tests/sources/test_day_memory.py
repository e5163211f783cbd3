"""A kept simulated day holds its whole numbers as int32 when they fit and draws its attribution
draw again when read (issue 11: 61 kept days of 10k ad sets were 1.1 GB), without changing a
number: the draw is the one the day was simulated with, and values beyond int32 stay int64."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario
from budget_pipeline.sources.simulated.day import HOURS_PER_DAY, _compact

COUNTS = ("spend", "impressions", "reach", "clicks")


@pytest.mark.parametrize("noise", ["full", "expected"])
def test_kept_days_hold_counts_as_int32_and_the_draw_the_day_was_simulated_with(noise):
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    account = SimulatedAccount(scenario, noise=noise)
    account.hourly_insights(date(2026, 9, 1), date(2026, 9, 3))
    days = account._days
    assert days, "the account simulated its days"
    for d, day in enumerate(days):
        for name in COUNTS:
            assert getattr(day, name).dtype == np.int32, name
        assert day.conversions.dtype == (np.int32 if noise == "full" else np.float64)
        assert "attribution_draw" not in vars(day)  # not kept: drawn again when read
        # the fourth block of uniforms of the day's generator, as simulate_day draws it
        rng = np.random.default_rng([scenario.seed, d])
        n = len(account._adsets)
        rng.standard_normal((3, n)), rng.random((2, n))
        expected = rng.random((3, n, HOURS_PER_DAY))[2]
        np.testing.assert_array_equal(day.attribution_draw, expected)
        assert day.attribution_draw.shape == (n, HOURS_PER_DAY)


def test_whole_numbers_beyond_int32_stay_int64_and_other_arrays_are_untouched():
    fits = np.array([[0, 5, 2**31 - 1]], dtype=np.int64)
    assert _compact(fits).dtype == np.int32
    np.testing.assert_array_equal(_compact(fits), fits)
    for beyond in (2**31, -(2**31) - 1):
        big = np.array([[1, beyond]], dtype=np.int64)
        assert _compact(big).dtype == np.int64 and _compact(big)[0, 1] == beyond
    fractional = np.array([[0.25, 1.5]])
    assert _compact(fractional) is fractional
    empty = np.zeros((0, 24), dtype=np.int64)
    assert _compact(empty).dtype == np.int64


def test_sums_of_kept_int32_days_do_not_wrap():
    # numpy sums int32 into the platform's int64: a day of 24 near-max hours stays exact
    hours = _compact(np.full((1, 24), 2**31 - 1, dtype=np.int64))
    assert hours.dtype == np.int32
    assert int(hours.sum(axis=1)[0]) == 24 * (2**31 - 1)
