"""The response-curve estimate (all there is against the API) against the simulator's truth."""

from __future__ import annotations

import dagster as dg
import polars as pl
from dagster_helpers import ALL_KEYS

KEYS = ALL_KEYS[-21:]


def test_the_curve_estimate_holds_the_simulators_truth_most_of_the_time(
    warehouse, counterfactual, read_table, marginal_pools
):
    result = counterfactual(
        dg.DagsterInstance.ephemeral(),
        warehouse,
        KEYS,
        pools_path=marginal_pools,
        run_config={"ops": {"counterfactual_outcomes": {"config": {"seeds": 0}}}},
    )
    assert result.success
    rows = read_table(warehouse, "counterfactual_outcomes")
    truth = rows.filter(pl.col("method") == "simulator")
    estimate = rows.filter(pl.col("method") == "response_curves")
    both = truth.join(estimate, on=["date", "pool"], suffix="_est")
    assert both.height == 21 * 3
    # the real side is the same days either way: the simulator's final attribution and the
    # warehouse's matured Insights agree to within a few percent
    real, real_est = both["real_value"].sum(), both["real_value_est"].sum()
    assert abs(real_est / real - 1) < 0.03
    moved = both.filter(pl.col("difference_low_est") < pl.col("difference_high_est"))
    assert moved.height >= 20, "the would-have budgets differ from the real ones on most days"
    inside = (pl.col("value_difference") >= pl.col("difference_low_est")) & (
        pl.col("value_difference") <= pl.col("difference_high_est")
    )
    coverage = moved.select(inside.mean()).item()
    print(f"\ncurve 90 % interval holds the truth on {coverage:.0%} of {moved.height} pool-days")
    assert coverage >= 0.75
    # the estimate's own sign agrees with the truth's where the truth is clearly away from 0
    clear = moved.filter(pl.col("value_difference").abs() > 100)
    agree = clear.select(
        (pl.col("value_difference").sign() == pl.col("value_difference_est").sign()).mean()
    ).item()
    assert clear.height == 0 or agree >= 0.6
    meta = result.asset_materializations_for_node("counterfactual_outcomes")[0].metadata
    assert meta["curve_interval_coverage"].value == round(coverage, 3)
    assert meta["method"].value == "simulator"
