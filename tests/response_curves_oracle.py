"""The response-curve fit as it was before issue 11's rework (commit 715d048, verbatim:
``git show 715d048:budget_pipeline/engine/response_curves.py``, its ``holder_daily``,
``fit_response_curves`` and ``_curvature``): string-keyed joins and windows, a sort per fit.
The oracle the reworked fit (runs of rows, no sort when already grouped) must match to the
last digits on any data. A change of the model itself changes both: retire this file then."""

# ruff: noqa
from __future__ import annotations

from datetime import datetime

import polars as pl

from budget_pipeline.engine.response_curves import (
    DAILY,
    CURVES,
    DAY_VAR,
    DEFAULT_ELASTICITY,
    DRIFT_VAR,
    ELASTICITY_PRIOR_SD,
    ELASTICITY_RANGE,
    MIN_BETWEEN_VAR,
    USUAL_SPEND,
    VALUE_CV,
)


def holder_daily(daily: pl.DataFrame, holders: pl.DataFrame) -> pl.DataFrame:
    """Ad-set days summed per budget holder (an ad set with its own budget, or its CBO
    campaign). ``holders``: holder_id, entity_type ('adset' | 'campaign')."""
    campaigns = holders.filter(pl.col("entity_type") == "campaign")["holder_id"].implode()
    in_cbo = pl.col("campaign_id").is_in(campaigns)
    sums = pl.col("spend", "conversions", "purchase_value")
    # an ad set holding its own budget has one row per day already: only CBO days are summed
    # (grouping every row cost as much as the rest of this function at 10k ad sets)
    own = daily.filter(~in_cbo & pl.col("adset_id").is_in(holders["holder_id"].implode()))
    cbo = daily.filter(in_cbo).group_by("campaign_id", "date").agg(sums.sum())
    return (
        pl.concat(
            [
                own.select(pl.col("adset_id").alias("holder_id"), "date", sums),
                cbo.select(pl.col("campaign_id").alias("holder_id"), "date", sums),
            ]
        )
        .select(list(DAILY))
        .cast(DAILY)  # type: ignore[arg-type]
        .sort("holder_id", "date")
    )


def fit_response_curves(
    daily: pl.DataFrame,
    holders: pl.DataFrame,
    *,
    as_of: datetime,
    half_life_days: float = 7.0,
    elasticity: dict[str, float] | None = None,
) -> pl.DataFrame:
    """One curve per holder (CURVES), pooled within its pool. ``daily`` is :data:`DAILY`;
    ``holders``: holder_id, pool (a holder without days gets its pool's level)."""
    elasticity = elasticity or {}
    pools = holders.select("holder_id", "pool").unique("holder_id")
    e_frame = pl.DataFrame({"pool": pools["pool"].unique().sort()}).with_columns(
        prior_e=pl.col("pool").replace_strict(
            elasticity, default=DEFAULT_ELASTICITY, return_dtype=pl.Float64
        )
    )
    rows = (
        daily.join(pools, on="holder_id", how="inner")
        .join(e_frame, on="pool", how="left")
        .filter(pl.col("spend") > 0)
        .with_columns(  # the holder's mean order value over its days
            mean_order=pl.col("purchase_value").sum().over("holder_id")
            / pl.col("conversions").sum().over("holder_id").clip(1e-9, None)
        )
    )
    curvature = _curvature(rows)
    today = as_of.date()
    weighted = (
        rows.join(curvature.select("holder_id", "e"), on="holder_id", how="left")
        .with_columns(
            w=pl.lit(0.5).pow(
                (pl.lit(today) - pl.col("date")).dt.total_days().cast(pl.Float64) / half_life_days
            )
        )
        .group_by("holder_id")
        .agg(
            days=pl.len().cast(pl.Int64),
            weight=pl.col("w").sum(),
            exposure=(pl.col("w") * pl.col("spend").pow(pl.col("e"))).sum(),
            value=(pl.col("w") * pl.col("purchase_value")).sum(),
            # a day's value less its purchases at the holder's mean order value: its
            # square per purchase estimates the variance of one purchase's value
            order_var=(
                pl.col("w")
                * (pl.col("purchase_value") - pl.col("conversions") * pl.col("mean_order")).pow(2)
            ).sum()
            / (pl.col("w") * pl.col("conversions")).sum().clip(1e-9, None),
            mean_order=pl.col("mean_order").first(),
            conversions=(pl.col("w") * pl.col("conversions")).sum(),
            spend=(pl.col("w") * pl.col("spend")).sum(),
        )
    )
    aov = (
        weighted.join(pools, on="holder_id")
        .group_by("pool")
        .agg(aov=pl.col("value").sum() / pl.col("conversions").sum().clip(1e-9, None))
    )
    # one purchase's value spreads at least VALUE_CV; more where the holder's own orders do
    # (one bulk order is then as much evidence as its share of the value, not a day's worth)
    order_cv2 = pl.max_horizontal(
        pl.lit(VALUE_CV**2),
        (pl.col("order_var") / pl.col("mean_order").pow(2).clip(1e-9, None)).fill_nan(0.0),
    )
    own = (
        weighted.join(pools, on="holder_id")
        .join(aov, on="pool")
        .with_columns(
            # half a purchase at the pool's average value keeps log() finite for a holder with none
            own_log_level=(pl.col("value") + 0.5 * pl.col("aov")).clip(1e-9, None).log()
            - pl.col("exposure").log(),
            own_var=(1.0 + order_cv2) / (pl.col("conversions") + 0.5) + DRIFT_VAR,
            log_spend=(pl.col("spend") / pl.col("weight")).log(),
        )
        .drop("pool", "aov")
    )
    frame = (
        pools.join(e_frame, on="pool", how="left")
        .join(own, on="holder_id", how="left")
        .join(curvature.select("holder_id", "e", "e_sd"), on="holder_id", how="left")
        .with_columns(
            elasticity=pl.col("e").fill_null(pl.col("prior_e")),
            elasticity_sd=pl.col("e_sd").fill_null(ELASTICITY_PRIOR_SD),
        )
    )
    # Holders' curvatures differ, so their levels compare at one spend per pool: the log value
    # each would earn at the pool's reference spend (geometric mean of the recent spends).
    reference = frame.group_by("pool").agg(ref=pl.col("log_spend").mean().fill_null(0.0))
    frame = frame.join(reference, on="pool", how="left").with_columns(
        own_at_ref=pl.col("own_log_level") + pl.col("elasticity") * pl.col("ref")
    )
    prior = (
        frame.filter(pl.col("own_at_ref").is_not_null())
        .with_columns(precision=1.0 / pl.col("own_var"))
        .group_by("pool")
        .agg(
            mu=(pl.col("own_at_ref") * pl.col("precision")).sum() / pl.col("precision").sum(),
            spread=pl.col("own_at_ref").var(ddof=1).fill_null(0.0),
            noise=pl.col("own_var").mean(),
        )
        .with_columns(tau2=(pl.col("spread") - pl.col("noise")).clip(MIN_BETWEEN_VAR, None))
    )
    out = frame.join(prior, on="pool", how="left").with_columns(
        pooled_weight=pl.when(pl.col("own_at_ref").is_null())
        .then(1.0)
        .otherwise(pl.col("own_var") / (pl.col("own_var") + pl.col("tau2")))
    )
    at_ref = (
        pl.when(pl.col("own_at_ref").is_null())
        .then(pl.col("mu"))
        .otherwise(
            pl.col("pooled_weight") * pl.col("mu")
            + (1 - pl.col("pooled_weight")) * pl.col("own_at_ref")
        )
    )
    out = out.with_columns(
        log_level=at_ref - pl.col("elasticity") * pl.col("ref"),
        log_level_sd=pl.when(pl.col("own_log_level").is_null())
        .then(pl.col("tau2").sqrt())
        .otherwise((1.0 / (1.0 / pl.col("own_var") + 1.0 / pl.col("tau2"))).sqrt()),
        days=pl.col("days").fill_null(0),
        recent_spend=(pl.col("spend") / pl.col("weight")).fill_null(0.0),
        recent_value=(pl.col("value") / pl.col("weight")).fill_null(0.0),
        recent_conversions=pl.col("conversions").fill_null(0.0),
    )
    return out.select(list(CURVES)).cast(CURVES).sort("pool", "holder_id")  # type: ignore[arg-type]


def _curvature(rows: pl.DataFrame) -> pl.DataFrame:
    """Per holder: posterior mean ``e`` and sd ``e_sd`` of its curvature, combining the pool's
    prior ``prior_e`` (sd ``ELASTICITY_PRIOR_SD``) with the slope of day-to-day changes: how
    much log value moved from one day to the next when log spend did (each pair of days weighed
    by the precision the holder's purchases per day allow).

    Differences, not levels: an efficiency that shifted for good (and the budget raises that
    follow it) moves the level once, so it cannot pass for curvature. Only days near the
    holder's recent spend count (at least ``USUAL_SPEND`` of the median of its last 7 days): a
    day cut short by a pause or a launch delivers less *because* it went badly, not the other
    way round."""
    prior_precision = 1.0 / ELASTICITY_PRIOR_SD**2
    lo, hi = ELASTICITY_RANGE
    per_holder = pl.col("holder_id")

    def previous(column: str) -> pl.Expr:  # the holder's day before (rows sorted by holder, date)
        return pl.when(pl.col("same_holder")).then(pl.col(column).shift(1))

    usual = pl.col("spend") >= USUAL_SPEND * pl.col("spend").rolling_median(7, min_samples=1).over(
        per_holder
    )
    both = pl.col("usual") & previous("usual")
    consecutive = (pl.col("date") - previous("date")).dt.total_days() == 1
    return (
        rows.sort("holder_id", "date")
        .with_columns(
            usual=usual,
            per_day=pl.col("conversions").mean().over(per_holder),
            same_holder=(per_holder == per_holder.shift(1)).fill_null(False),
        )
        .with_columns(
            x=pl.col("spend").log(),
            # half a purchase keeps a day without purchases on the log scale
            y=(pl.col("purchase_value") + 0.5 * pl.col("mean_order")).clip(1e-9, None).log(),
            # a difference of two days carries both days' purchase noise
            precision=1.0 / (2.0 * (1.0 + VALUE_CV**2) / (pl.col("per_day") + 0.5) + DAY_VAR),
        )
        .with_columns(
            dx=pl.col("x") - previous("x"),
            dy=pl.col("y") - previous("y"),
            pair=(both & consecutive).fill_null(False),
        )
        .group_by("holder_id")
        .agg(
            prior_e=pl.col("prior_e").first(),
            sxx=(pl.col("precision") * pl.col("dx").pow(2)).filter(pl.col("pair")).sum(),
            sxy=(pl.col("precision") * pl.col("dx") * pl.col("dy")).filter(pl.col("pair")).sum(),
        )
        .with_columns(
            e=(
                (prior_precision * pl.col("prior_e") + pl.col("sxy"))
                / (prior_precision + pl.col("sxx"))
            ).clip(lo, hi),
            e_sd=(1.0 / (prior_precision + pl.col("sxx"))).sqrt(),
        )
    )
