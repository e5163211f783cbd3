"""The oracle allocation: exact money, optimal under the true curves, and a fair yardstick."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_pipeline.money import largest_remainder_split
from budget_pipeline.sources.simulated import (
    DEFAULT_SCENARIO_PATH,
    SimulatedAccount,
    current_allocation,
    expected_daily_value,
    load_scenario,
    oracle_allocation,
)


@pytest.fixture(scope="module")
def account() -> SimulatedAccount:
    return SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))


def test_oracle_frame_and_exact_total(account):
    current = current_allocation(account)
    total = int(current["daily_budget"].sum())
    oracle = oracle_allocation(account, total)
    assert oracle.schema == pl.Schema(
        {
            "adset_id": pl.Utf8(),
            "daily_budget": pl.Int64(),
            "expected_conversions": pl.Float64(),
            "expected_value": pl.Float64(),
        }
    )
    assert oracle["daily_budget"].sum() == total
    assert oracle["daily_budget"].min() >= 100
    # by default: every ad set that can deliver now
    assert set(oracle["adset_id"]) == set(current["adset_id"])
    assert oracle["expected_value"].sum() == pytest.approx(expected_daily_value(account, oracle))


def test_oracle_beats_the_scenario_and_an_equal_split(account):
    current = current_allocation(account)
    total = int(current["daily_budget"].sum())
    assert 170_000 < total < 190_000  # ~1,800 EUR/day across the three pools
    oracle = oracle_allocation(account, total)
    equal = current.with_columns(
        daily_budget=pl.Series(largest_remainder_split(total, np.ones(current.height)))
    )
    best = expected_daily_value(account, oracle)
    assert best > 1.03 * expected_daily_value(account, current)
    assert best > 1.03 * expected_daily_value(account, equal)
    # no single cent moved elsewhere improves it (a local check of optimality)
    budgets = oracle["daily_budget"].to_numpy().copy()
    rng = np.random.default_rng(0)
    for _ in range(20):
        i, j = rng.choice(budgets.size, size=2, replace=False)
        moved = budgets.copy()
        step = min(500, moved[i] - 100)
        moved[i] -= step
        moved[j] += step
        trial = oracle.with_columns(daily_budget=pl.Series(moved))
        assert expected_daily_value(account, trial) <= best + 1e-9


def test_oracle_equalises_marginal_value(account):
    oracle = oracle_allocation(account, 150_000)
    curves = account.response_curves().join(oracle, on="adset_id")
    b = curves["daily_budget"].to_numpy() / 100.0
    a = (curves["aov"] * curves["scale"] * curves["efficiency_now"]).to_numpy()
    e = curves["elasticity"].to_numpy()
    marginal = a * e / 100.0 * (b / 100.0) ** (e - 1.0)
    free = curves["daily_budget"].to_numpy() > 100
    assert free.sum() > 10
    assert marginal[free].max() / marginal[free].min() < 1.01
    assert (marginal[~free] <= marginal[free].min() * 1.01).all()  # at the floor: not worth more


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(min_value=4_000, max_value=5_000_000),
    k=st.integers(min_value=1, max_value=39),
    min_budget=st.integers(min_value=0, max_value=100),
)
def test_oracle_total_is_exact(account, total, k, min_budget):
    ids = current_allocation(account)["adset_id"].to_list()[:k]
    oracle = oracle_allocation(account, total, ids, min_budget=min_budget)
    assert oracle["daily_budget"].sum() == total
    assert oracle["daily_budget"].min() >= min_budget
    assert oracle["adset_id"].to_list() == ids


def test_single_ad_set_takes_everything(account):
    oracle = oracle_allocation(account, 12_345, ["120210000001001"])
    assert oracle["daily_budget"].to_list() == [12_345]


def test_oracle_follows_the_truth_at_now():
    account = SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))
    pair = ["120210000005001", "120210000005002"]  # the second halved from day 45
    before = oracle_allocation(account, 40_000, pair)["daily_budget"].to_list()
    assert before[0] > 2 * before[1]
    account.apply_budget_change("120210000005002", daily_budget=6500)  # -50 %: learning
    during = oracle_allocation(account, 40_000, pair)["daily_budget"].to_list()
    assert during[1] < before[1]


def test_oracle_errors(account):
    with pytest.raises(ValueError, match="'nope'"):
        oracle_allocation(account, 10_000, ["nope"])
    with pytest.raises(ValueError, match="at least 100"):
        oracle_allocation(account, 150, ["120210000001001", "120210000001002"])
    with pytest.raises(ValueError, match="missing columns"):
        expected_daily_value(account, pl.DataFrame({"adset_id": ["120210000001001"]}))
