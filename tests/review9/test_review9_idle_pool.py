"""Review 9: one pool without recent spend stops the marginal policy for every pool."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from marginal_helpers import adsets, neutral_scores

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.policy import plan_with_policies

AS_OF = datetime(2026, 10, 30)


def _entities(pools: dict[str, str], budgets: dict[str, int]) -> pl.DataFrame:
    return adsets(budgets, pools)


def _scores(pools: dict[str, str]) -> pl.DataFrame:
    return neutral_scores(pools, AS_OF)


def _daily(levels: dict[str, tuple[float, float]]) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for adset, (spend, roas) in levels.items():
        for d in range(42):
            conversions = float(rng.poisson(spend * roas / 50.0))
            rows.append(
                {"adset_id": adset, "campaign_id": f"c_{adset}",
                 "date": AS_OF.date() - timedelta(days=42 - d), "spend": spend,
                 "conversions": conversions, "purchase_value": conversions * 50.0}
            )  # fmt: skip
    return pl.DataFrame(rows)


def test_a_pool_with_no_spend_in_the_curve_window_crashes_every_pools_plan():
    """Scenario: pools file with ``baseline_days: 90`` (allowed: 7..90). Pool ``p`` (marginal)
    has ``strong`` (ROAS 4) and ``weak`` (ROAS 2) at 100.00/day with 42 days of data; pool
    ``idle`` (marginal) has one ACTIVE, scored ad set ``c`` (50.00/day) whose campaign did not
    spend in the last 56 days (the curve window, ``CURVE_DAYS``), which a 90-day baseline still
    scores.

    Expected: ``c`` is held (no curve, nothing to act on) and pool ``p`` plans as without it:
    strong +15.00, weak −15.00 (measured with ``c`` removed).

    Observed: the idle pool's curve has no level (its pool prior is null), its target is NaN,
    and ``propose_marginal`` raises polars ``InvalidOperationError: conversion from f64 to i64
    failed in column 'target_major' ... [NaN]``: ``rebalance_plan`` fails, so no pool of the
    account is planned that cycle nor any later one while the pool stays idle. (One such pool
    alone does not crash: it yields "marginal return NaN EUR per EUR ... NaN sd" reasons.)

    Fix: in propose_marginal, treat a holder whose curve level is null/NaN as not movable
    (hold it, say "no spend in the last 56 days") before the equilibrium is solved.
    """
    pools = {"strong": "p", "weak": "p", "c": "idle"}
    config = PoolsConfig(
        settings={"baseline_days": 90},
        pools=[
            {"name": "p", "tier": 1, "floor": 0, "ceiling": 100_000, "policy": "marginal_return"},
            {"name": "idle", "tier": 1, "floor": 0, "ceiling": 100_000,
             "policy": "marginal_return"},
        ],
    )  # fmt: skip
    entities = _entities(pools, {"strong": 10_000, "weak": 10_000, "c": 5_000})
    daily = _daily({"strong": (100.0, 4.0), "weak": (100.0, 2.0)})
    actions = pl.DataFrame(schema=contracts.ACTIONS)
    without_c = plan_with_policies(
        entities.filter(pl.col("pool") == "p"), _scores({"strong": "p", "weak": "p"}), actions,
        config, as_of=AS_OF, daily=daily,
    )  # fmt: skip
    assert dict(without_c.select("entity_id", "delta").iter_rows()) == {
        "strong": 1_500,
        "weak": -1_500,
    }
    plan = plan_with_policies(
        entities, _scores(pools), actions, config, as_of=AS_OF, daily=daily
    )  # raises today
    assert dict(plan.select("entity_id", "delta").iter_rows()) == {
        "strong": 1_500,
        "weak": -1_500,
        "c": 0,
    }
