"""What the would-have budgets would have earned, estimated from response curves (SPEC §9).

Against a real account nobody can replay the days, so each budget holder's fitted response
curve (:mod:`~budget_pipeline.engine.response_curves`: value/day = A · spend^e, its level
partially pooled within the pool, so a holder with little data is judged mostly by its pool)
prices the change from the real spend ``s`` to the would-have spend ``s'``:

    would-have value = real value + A · (s'^e − s^e)

``s'`` scales the real spend by the budget ratio (a holder delivers its budget at the
utilisation it really had; one that really spent nothing is given its usual utilisation). The
curve of day D is fitted on the days up to and including D — hindsight is allowed here: the
plans were made without it.

The interval is a predictive one, by simulation (``draws`` draws): the level ``log A`` from its
posterior (``log_level_sd``; one draw per holder, shared by all its days, as the day fits
share their data), the curvature ``e`` with ``ELASTICITY_SD`` on ``log e`` (one draw per pool:
an assumed curvature is wrong for the whole pool at once; it bends the curve about the
holder's recent spend, where the level was measured), and the day's purchase noise on the
difference (Poisson purchases at the holder's order value). Its ``level`` quantiles (default
90 %) bound the difference; the point is the draws' mean.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.counterfactual import midnight
from budget_pipeline.engine.response_curves import (
    ELASTICITY_RANGE,
    VALUE_CV,
    fit_response_curves,
    holder_daily,
)
from budget_pipeline.money import minor_factor

ELASTICITY_SD = 0.15  # sd of log e: the curvature is a prior (as in the marginal policy)
METHOD = "response_curves"

# counterfactual_outcomes: per day and pool, one row per method.
OUTCOMES: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "pool": pl.Utf8(),
    "method": pl.Utf8(),  # "simulator" | "response_curves"
    "real_spend": pl.Float64(),  # major units
    "real_value": pl.Float64(),
    "would_have_spend": pl.Float64(),
    "would_have_value": pl.Float64(),
    "value_difference": pl.Float64(),  # would-have − real
    "difference_low": pl.Float64(),  # the interval of the difference
    "difference_high": pl.Float64(),
}

# Per pool over the whole range (pool "all": the account), same meaning as OUTCOMES.
TOTALS: dict[str, pl.DataType] = {k: v for k, v in OUTCOMES.items() if k != "date"}


def day_curves(
    daily: pl.DataFrame,
    holders: pl.DataFrame,
    days: list,
    config: PoolsConfig,
    *,
    curve_days: int = 56,
    half_life_days: float = 10.0,
) -> pl.DataFrame:
    """Each holder's curve as fitted after each of ``days`` (response_curves.CURVES + date).

    ``daily``: response_curves.DAILY (per holder and day); ``holders``: holder_id, pool."""
    elasticity = {p.name: p.response_elasticity for p in config.pools}
    frames = []
    for day in days:
        window = daily.filter(
            pl.col("date") <= day, pl.col("date") > day - timedelta(days=curve_days)
        )
        curves = fit_response_curves(
            window,
            holders,
            as_of=midnight(day + timedelta(days=1)),
            half_life_days=half_life_days,
            elasticity=elasticity,
        )
        frames.append(curves.with_columns(date=pl.lit(day, dtype=pl.Date())))
    return pl.concat(frames)


def curve_outcomes(
    budgets: pl.DataFrame,
    daily: pl.DataFrame,
    holders: pl.DataFrame,
    config: PoolsConfig,
    *,
    draws: int = 400,
    level: float = 0.90,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per day and pool :data:`OUTCOMES`, per pool and overall :data:`TOTALS`).

    ``budgets``: ``entity_id, date, pool, budget, real`` (would-have and real daily budgets
    in force, minor units, 0 when paused: counterfactual.would_have_budgets); ``daily``: per
    ad set and day (response_curves.daily_performance) over the fitting history and the
    days; ``holders``: ``holder_id, entity_type, pool`` (a CBO campaign's ad sets are summed).
    """
    factor = minor_factor(config.currency)
    days = sorted(budgets["date"].unique().to_list())
    per_holder = holder_daily(daily, holders)
    curves = day_curves(per_holder, holders.select("holder_id", "pool"), days, config)
    frame = (
        budgets.rename({"entity_id": "holder_id"})
        .join(per_holder, on=["holder_id", "date"], how="left")
        .join(curves.drop("pool"), on=["holder_id", "date"], how="left")
        .with_columns(pl.col("spend", "conversions", "purchase_value").fill_null(0.0))
        .sort("date", "pool", "holder_id")
    )
    # utilisation: spend per unit of budget, the holder's own over the days, else everyone's
    with_budget = frame.filter(pl.col("real") > 0)
    overall = with_budget["spend"].sum() / max(with_budget["real"].sum() / factor, 1e-9)
    usual = with_budget.group_by("holder_id").agg(
        util=pl.col("spend").sum() / (pl.col("real").sum() / factor)
    )
    frame = frame.join(usual, on="holder_id", how="left").with_columns(
        pl.col("util").fill_null(overall if overall > 0 else 1.0)
    )
    real_spend = frame["spend"].to_numpy()
    budget = frame["budget"].to_numpy() / factor
    real_budget = frame["real"].to_numpy() / factor
    scaled = np.divide(
        real_spend * budget, real_budget, out=np.zeros_like(budget), where=real_budget > 0
    )
    spend = np.where(
        budget <= 0,
        0.0,
        np.where((real_spend > 0) & (real_budget > 0), scaled, budget * frame["util"].to_numpy()),
    )
    diff = _draws(frame, real_spend, spend, draws, seed)
    frame = frame.with_columns(would_have_spend=pl.Series(spend))
    per_day = _summarise(frame, diff, ["date", "pool"], level)
    pools = _summarise(frame, diff, ["pool"], level)
    everything = _summarise(frame.with_columns(pool=pl.lit("all")), diff, ["pool"], level)
    return (
        per_day.select(list(OUTCOMES)).cast(OUTCOMES),  # type: ignore[arg-type]
        pl.concat([pools, everything]).select(list(TOTALS)).cast(TOTALS),  # type: ignore[arg-type]
    )


def _draws(
    frame: pl.DataFrame, real_spend: np.ndarray, spend: np.ndarray, draws: int, seed: int
) -> np.ndarray:
    """(rows × draws) value differences: level, curvature and purchase noise drawn."""
    rng = np.random.default_rng(seed)
    holders, h_idx = np.unique(frame["holder_id"].to_numpy().astype(str), return_inverse=True)
    pools, p_idx = np.unique(frame["pool"].to_numpy().astype(str), return_inverse=True)
    mu = frame["log_level"].fill_null(0.0).to_numpy()[:, None]
    sd = frame["log_level_sd"].fill_null(0.0).to_numpy()[:, None]
    e0 = frame["elasticity"].fill_null(0.6).to_numpy()[:, None]
    z = rng.standard_normal((holders.size, draws))[h_idx]
    eps = rng.standard_normal((pools.size, draws))[p_idx] * ELASTICITY_SD
    e = np.clip(e0 * np.exp(eps), *ELASTICITY_RANGE)  # concave, as every fitted curve
    # Another curvature bends the curve about the spend its level was measured at (the
    # holder's recent spend): the value there stays what the data say, only the extrapolation
    # to another spend changes.
    anchor = np.maximum(frame["recent_spend"].fill_null(0.0).to_numpy(), 1.0)[:, None]
    level = np.exp(mu + sd * z) * np.power(anchor, e0 - e)
    has_curve = frame["log_level"].is_not_null().to_numpy()[:, None]
    expected = np.where(
        has_curve,
        level * (np.power(spend[:, None], e) - np.power(real_spend[:, None], e)),
        0.0,
    )
    noise_sd = np.sqrt(np.abs(expected) * _order_value(frame)[:, None] * (1.0 + VALUE_CV**2))
    return expected + noise_sd * rng.standard_normal(expected.shape)


def _order_value(frame: pl.DataFrame) -> np.ndarray:
    """Each row's holder's average purchase value over the days: its own, else its pool's,
    else the account's."""
    value, conversions = pl.col("purchase_value"), pl.col("conversions")
    overall = frame["purchase_value"].sum() / max(frame["conversions"].sum(), 1e-9)
    own = (value.sum() / conversions.sum()).over("holder_id")
    pool = (value.sum() / conversions.sum()).over("pool")
    return (
        frame.select(
            pl.when(conversions.sum().over("holder_id") > 0)
            .then(own)
            .when(conversions.sum().over("pool") > 0)
            .then(pool)
            .otherwise(pl.lit(overall))
        )
        .to_series()
        .to_numpy()
    )


def _summarise(
    frame: pl.DataFrame, diff: np.ndarray, keys: list[str], level: float
) -> pl.DataFrame:
    """Sums per ``keys`` of real and would-have spend and value, with the interval."""
    codes = frame.select(keys).unique(maintain_order=True)
    index = (
        frame.select(keys)
        .join(codes.with_row_index("_group"), on=keys, how="left", maintain_order="left")["_group"]
        .to_numpy()
    )
    n = codes.height
    sums = np.zeros((n, diff.shape[1]))
    np.add.at(sums, index, diff)
    lo, hi = np.quantile(sums, [(1 - level) / 2, (1 + level) / 2], axis=1)
    point = sums.mean(axis=1)
    real_value = np.bincount(index, weights=frame["purchase_value"].to_numpy(), minlength=n)
    return codes.with_columns(
        method=pl.lit(METHOD),
        real_spend=pl.Series(np.bincount(index, weights=frame["spend"].to_numpy(), minlength=n)),
        real_value=pl.Series(real_value),
        would_have_spend=pl.Series(
            np.bincount(index, weights=frame["would_have_spend"].to_numpy(), minlength=n)
        ),
        would_have_value=pl.Series(real_value + point),
        value_difference=pl.Series(point),
        difference_low=pl.Series(lo),
        difference_high=pl.Series(hi),
    )
