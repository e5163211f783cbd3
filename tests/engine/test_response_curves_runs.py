"""Issue 11: the response-curve fit keys its row work on each holder's run of rows instead of
string ids, and sorts only what does not already come grouped. It must give the old fit's
numbers (tests/response_curves_oracle.py) on any data, in any row order, and on the per-day
windows the counterfactual fits (daily_performance's rows, in no order: test_holder_days)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import response_curves_oracle as oracle

from budget_pipeline.engine.holder_runs import holder_runs, reaches_share_of_week_median, run_starts
from budget_pipeline.engine.response_curves import (
    CURVES,
    DAILY,
    fit_response_curves,
    holder_daily,
)

AS_OF = datetime(2026, 10, 30)
DAYS = 40
ELASTICITY = {"p": 0.6, "q": 0.45}


def _history(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ad-set days (sorted by ad set and date, as daily_performance returns them) and holders:
    ad sets with their own budgets in two pools, two CBO campaigns of three ad sets, budgets
    that step up and down, paused days (no spend), missing days, a day with one bulk order, an
    ad set of no holder, a holder that never spent and one without any row, and one that
    started the day after the one before it (by id) stopped."""
    rng = np.random.default_rng(seed)
    own = [f"a{i:02d}" for i in range(12)]
    cbo = {f"k{c}": [f"k{c}s{j}" for j in range(3)] for c in range(2)}
    campaign_of = {a: f"c_{a}" for a in [*own, "stray", "never"]}
    campaign_of |= {s: k for k, sets in cbo.items() for s in sets}
    rows = []
    for adset, campaign in campaign_of.items():
        level, e = rng.uniform(1.0, 4.0), rng.uniform(0.3, 0.9)
        budget = rng.uniform(5.0, 300.0)
        for d in range(DAYS):
            if rng.random() < 0.08 or (adset, d < DAYS // 2) in (("a05", False), ("a06", True)):
                continue  # no row that day; a05 stopped the day before a06 started
            if rng.random() < 0.15:
                budget *= rng.choice([0.6, 0.8, 1.25, 1.5])
            spend = 0.0 if adset == "never" or rng.random() < 0.07 else budget * rng.uniform(0.7, 1)
            conversions = float(rng.poisson(level * spend**e / 8.0))
            value = conversions * rng.uniform(20.0, 60.0) + (500.0 if rng.random() < 0.01 else 0)
            rows.append(
                {"adset_id": adset, "campaign_id": campaign,
                 "date": AS_OF.date() - timedelta(days=DAYS - d), "spend": round(spend, 2),
                 "conversions": conversions, "purchase_value": round(value, 2)}
            )  # fmt: skip
    holders = pl.DataFrame(
        [{"holder_id": a, "entity_type": "adset", "pool": "pq"[i % 2]}
         for i, a in enumerate([*own, "never", "missing"])]
        + [{"holder_id": k, "entity_type": "campaign", "pool": "q"} for k in cbo]
    )  # fmt: skip
    return pl.DataFrame(rows).sort("adset_id", "date"), holders


def _assert_same_curves(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Same holders, pools and day counts; every float within 1e-12 relative (polars' parallel
    float sums differ from run to run by about 1e-14)."""
    assert got.schema == want.schema == pl.Schema(CURVES)
    assert got.height == want.height
    for column, dtype in CURVES.items():
        a, b = got[column], want[column]
        if dtype != pl.Float64():
            assert a.equals(b), column
            continue
        assert (a.is_null() == b.is_null()).all(), column
        x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
        assert (np.abs(x - y) <= 1e-12 * np.maximum(np.abs(y), 1.0)).all(), (column, x - y)


def _fit(fit, daily: pl.DataFrame, holders: pl.DataFrame, as_of: datetime = AS_OF):
    return fit(daily, holders, as_of=as_of, half_life_days=10, elasticity=ELASTICITY)


@pytest.mark.parametrize("seed", range(4))
def test_the_fit_gives_the_old_fits_numbers_in_any_row_order(seed):
    daily, holders = _history(seed)
    want = _fit(oracle.fit_response_curves, oracle.holder_daily(daily, holders), holders)
    assert want["days"].max() > 30 and want.filter(pl.col("days") == 0).height == 2
    orders = {
        "as read": daily,
        "shuffled": daily.sample(fraction=1.0, shuffle=True, seed=seed),
        "newest first": daily.reverse(),
    }
    for name, rows in orders.items():
        per_holder = holder_daily(rows, holders)
        got = _fit(fit_response_curves, per_holder, holders)
        _assert_same_curves(got, want)
        # the fit also reads the holders' days in any order, sorting them itself
        shuffled = per_holder.sample(fraction=1.0, shuffle=True, seed=seed + 1)
        _assert_same_curves(_fit(fit_response_curves, shuffled, holders), want), name
    # days of a holder the fit is not asked about are left out
    fewer = holders.filter(pl.col("holder_id") != "a02")
    want = _fit(oracle.fit_response_curves, oracle.holder_daily(daily, holders), fewer)
    _assert_same_curves(_fit(fit_response_curves, holder_daily(daily, holders), fewer), want)


def test_a_window_without_days_or_with_one_holder_gives_the_old_fits_numbers():
    daily, holders = _history(1)
    for rows in (daily.head(0), daily.filter(pl.col("adset_id") == "a03")):
        want = _fit(oracle.fit_response_curves, oracle.holder_daily(rows, holders), holders)
        _assert_same_curves(_fit(fit_response_curves, holder_daily(rows, holders), holders), want)


def test_a_missing_value_on_a_day_with_spend_is_named_not_read_as_zero():
    daily, holders = _history(2)
    per_holder = holder_daily(daily, holders)
    unspent = per_holder.with_columns(
        conversions=pl.when(pl.col("spend") == 0).then(None).otherwise("conversions")
    )
    assert unspent["conversions"].null_count() > 10
    want = _fit(oracle.fit_response_curves, unspent, holders)
    _assert_same_curves(_fit(fit_response_curves, unspent, holders), want)  # never read
    broken = per_holder.with_columns(
        purchase_value=pl.when(pl.int_range(pl.len()) == 100).then(None).otherwise("purchase_value")
    )
    assert broken["spend"][100] > 0
    with pytest.raises(ValueError, match=r"daily purchase_value: null on a day with spend"):
        _fit(fit_response_curves, broken, holders)


def test_the_counterfactuals_day_windows_give_the_old_fits_numbers():
    """counterfactual_value.day_curves fits one window of the holders' days per day."""
    daily, holders = _history(9)
    per_holder, old_per_holder = holder_daily(daily, holders), oracle.holder_daily(daily, holders)
    for back in (0, 5, 17):
        day = AS_OF.date() - timedelta(days=back + 1)
        as_of = AS_OF - timedelta(days=back)
        window = (pl.col("date") <= day) & (pl.col("date") > day - timedelta(days=21))
        got = _fit(fit_response_curves, per_holder.filter(window), holders, as_of)
        want = _fit(oracle.fit_response_curves, old_per_holder.filter(window), holders, as_of)
        _assert_same_curves(got, want)


def test_holder_days_come_grouped_by_holder_oldest_first_from_any_order():
    daily, holders = _history(3)
    want = oracle.holder_daily(daily, holders)  # sorted by holder and date
    for rows in (daily, daily.sample(fraction=1.0, shuffle=True, seed=2)):
        got = holder_daily(rows, holders)
        assert got.schema == pl.Schema(DAILY)
        assert holder_runs(got)[0] is got  # grouped already: the fit will not sort it
        got = got.sort("holder_id", "date")
        assert got.select("holder_id", "date").equals(want.select("holder_id", "date"))
        for column in ("spend", "conversions", "purchase_value"):  # CBO sums: in any order
            assert np.allclose(got[column], want[column], rtol=1e-14, atol=0), column
    assert holder_daily(daily, holders).sort("holder_id", "date").equals(want)  # to the bit


def test_holder_runs_keeps_grouped_rows_and_sorts_any_other():
    def frame(ids: list[str], days: list[int | None]) -> pl.DataFrame:
        dates = [None if d is None else date(2026, 1, d) for d in days]
        return pl.DataFrame({"holder_id": ids, "date": dates, "spend": range(len(ids))})

    grouped = frame(["b", "b", "a", "a", "c"], [1, 2, 1, 1, 5])  # not by name: still grouped
    same, run = holder_runs(grouped)
    assert same is grouped and run.to_list() == [0, 0, 1, 1, 2]
    for ungrouped in (
        frame(["a", "b", "a"], [1, 1, 2]),  # a's days apart
        frame(["a", "a", "b"], [2, 1, 1]),  # a's newest first
        frame(["a", "a", "b"], [1, None, 1]),  # a day unknown
    ):
        got, run = holder_runs(ungrouped)
        assert got.equals(ungrouped.sort("holder_id", "date"))
        assert run.to_list() == got["holder_id"].rle_id().to_list()


def test_usual_days_are_polars_rolling_median_rule_to_the_bit():
    """``spend >= 0.8 * spend.rolling_median(7, min_samples=1).over(holder)`` on runs of any
    length (windows of 1 to 7 days, even ones take a mean of two), with ties and spends
    exactly 0.8 or 1.25 times another."""
    rng = np.random.default_rng(5)
    for trial in range(60):
        n = int(rng.integers(1, 2000))
        runs = np.sort(rng.integers(0, max(1, n // int(rng.integers(1, 15))), n)).astype(np.uint32)
        spend = [
            rng.uniform(0.01, 100.0, n),
            rng.choice([1.0, 0.8, 1.25, 2.0, 0.64, 1.6, 0.5], n),
            np.round(rng.uniform(0.0, 10.0, n), 1) + 0.1,
            np.exp(rng.normal(0.0, 3.0, n)),
        ][trial % 4]
        want = (
            pl.DataFrame({"run": runs, "spend": spend})
            .select(
                pl.col("spend")
                >= 0.8 * pl.col("spend").rolling_median(7, min_samples=1).over("run")
            )
            .to_series()
            .to_numpy()
        )
        got = reaches_share_of_week_median(spend, run_starts(runs), 0.8)
        assert got.dtype == np.bool_ and (got == want).all(), trial
