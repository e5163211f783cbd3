"""Response curves: what each budget holder's next euro earns, with its uncertainty.

Model (per budget holder h: an ad set with its own daily budget, or a CBO campaign with its ad
sets' sums): expected purchase value per day at daily spend ``b`` (major units) is

    value_h(b) = A_h · b ** e_pool

a power curve with diminishing returns (0 < e < 1), the shape Meta's delivery shows and the
one media-mix models fit (Hill/power saturation). Its marginal return is
``m_h(b) = e · A_h · b ** (e − 1) = e · ROAS_h(b)``.

Fitting, from the holder's own daily history (:func:`fit_response_curves`):

- recency: each day weighs ``0.5 ** (age / half_life_days)``, so a structural shift shows up
  within days while the rest of the history still steadies the estimate;
- the level ``log A_h`` is estimated from the weighted value over the weighted ``spend ** e``;
  its variance from the weighted conversion count (Poisson counts, a value per purchase with a
  coefficient of variation ``VALUE_CV``) plus a floor for day-to-day efficiency drift;
- partial pooling: the levels of a pool's holders are shrunk toward the pool's precision-
  weighted mean by empirical Bayes (method of moments for the between-holder variance), so a
  holder with a handful of conversions is judged mostly by its pool, one with hundreds by itself;
- one purchase's value varies with a coefficient of variation of at least ``VALUE_CV``, more
  where the holder's own days show it (each day's value less its purchases at the mean order
  value): one bulk order is as much evidence as the few purchases it is, not a week of sales;
- partial pooling: the holders' values at a common spend per pool (the geometric mean of their
  recent spends) are shrunk toward the pool's precision-weighted mean by empirical Bayes
  (method of moments for the between-holder variance), so a holder with a handful of
  conversions is judged mostly by its pool, one with hundreds by itself;
- the curvature ``e_h`` is each holder's own: the pool's prior (``Pool.response_elasticity``,
  default 0.6, sd ``ELASTICITY_PRIOR_SD``) updated by how log value changed from day to day
  when log spend did, over the whole window (a slope needs spread, not recency; differences,
  so a lasting efficiency shift and the raises it earns are no curvature), on days that were
  not cut short. Budgets that barely moved leave it at the prior; a history that varied spend
  shows a saturating holder as one (``elasticity_sd`` says how sure).

Everything is vectorised (numpy over each holder's run of days, :mod:`holder_runs`; polars
per holder), with the uncertainty kept: ``log_level_sd`` is the posterior standard deviation of
``log A_h`` at the holder's recent spend, ``elasticity_sd`` that of ``e_h``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from budget_pipeline.engine.entity_keys import with_entity_ids
from budget_pipeline.engine.holder_runs import (
    holder_days,
    holder_runs,
    reaches_share_of_week_median,
    run_starts,
)
from budget_pipeline.engine.insight_pieces import check_rollup, edge_dates
from budget_pipeline.engine.side_cursor import beside
from budget_pipeline.sql import load_sql

VALUE_CV = 0.55  # coefficient of variation of one purchase's value (lognormal sd ≈ 0.5)
DRIFT_VAR = 0.005  # floor on a level's variance: efficiency wanders from day to day
MIN_BETWEEN_VAR = 0.01  # never pool harder than a 10 % spread of levels within a pool
DEFAULT_ELASTICITY = 0.6
ELASTICITY_PRIOR_SD = 0.10  # how far one holder's curvature may sit from its pool's prior
DAY_VAR = 0.03  # day-to-day variance of log efficiency (drift, weekday) around the curve
ELASTICITY_RANGE = (0.1, 0.95)
USUAL_SPEND = 0.8  # a day below this share of the last 7 days' median spend was cut short
EPOCH = date(1970, 1, 1)  # a Date's physical value counts days from here

DAILY: dict[str, pl.DataType] = {
    "holder_id": pl.Utf8(),
    "date": pl.Date(),
    "spend": pl.Float64(),
    "conversions": pl.Float64(),
    "purchase_value": pl.Float64(),
}

CURVES: dict[str, pl.DataType] = {
    "holder_id": pl.Utf8(),
    "pool": pl.Utf8(),
    "elasticity": pl.Float64(),  # the holder's curvature e_h (posterior mean)
    "elasticity_sd": pl.Float64(),  # its posterior standard deviation
    "log_level": pl.Float64(),  # posterior mean of log A (value/day at 1 unit of spend/day)
    "log_level_sd": pl.Float64(),  # its posterior standard deviation
    "own_log_level": pl.Float64(),  # the holder's own estimate before pooling (null: no data)
    "pooled_weight": pl.Float64(),  # share of the estimate taken from the pool (0..1)
    "days": pl.Int64(),  # days with spend in the fitting window
    "recent_spend": pl.Float64(),  # recency-weighted spend per day, major units
    "recent_value": pl.Float64(),  # recency-weighted purchase value per day
    "recent_conversions": pl.Float64(),  # recency-weighted conversions (sum, not per day)
}


def daily_performance(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int) -> pl.DataFrame:
    """Per ad set and day, over the ``days`` whole days before ``as_of``: spend, conversions
    and purchase value (attribution-matured estimates), in no particular order (sorting them
    cost half the query; :func:`holder_daily` and :func:`holder_curves` group them). The ids
    come dictionary-encoded (``Categorical``: read as integer keys, each distinct id once,
    :mod:`~budget_pipeline.engine.entity_keys`)."""
    start = as_of - timedelta(days=days)
    params = {"lo": start, "hi": as_of, "edge_dates": edge_dates([start, as_of])}
    with beside(con) as side:  # the rollup checked on a second cursor meanwhile (5 ms at 10k)
        checked = side.submit(check_rollup, start, as_of)
        keyed = con.sql(load_sql("select_daily_performance"), params=params).to_arrow_table()
        daily = with_entity_ids(
            con, keyed, {"adset_key": "adset_id", "campaign_key": "campaign_id"}
        )
        checked.result()  # a stale rollup raises here, or first if the reads above failed
    return daily


def holder_daily(daily: pl.DataFrame, holders: pl.DataFrame) -> pl.DataFrame:
    """Ad-set days summed per budget holder (an ad set with its own budget, or its CBO
    campaign), :data:`DAILY`. ``holders``: holder_id, entity_type ('adset' | 'campaign').

    Each holder's days come together, oldest first (:func:`holder_runs.holder_days`): the
    order :func:`fit_response_curves` reads without sorting."""
    days, ids = holder_days(daily, holders)
    return days.with_columns(holder_id=ids.gather(days["run"])).select(list(DAILY))


def holder_curves(
    daily: pl.DataFrame,
    holders: pl.DataFrame,
    *,
    as_of: datetime,
    half_life_days: float = 7.0,
    elasticity: dict[str, float] | None = None,
) -> pl.DataFrame:
    """``fit_response_curves(holder_daily(daily, holders), holders, ...)`` straight from the
    ad-set days (daily_performance, in any order), without the per-holder frame of ids.
    ``holders``: holder_id, entity_type, pool."""
    days, ids = holder_days(daily, holders)
    return _fit(days, ids, holders, as_of, half_life_days, elasticity or {})


def fit_response_curves(
    daily: pl.DataFrame,
    holders: pl.DataFrame,
    *,
    as_of: datetime,
    half_life_days: float = 7.0,
    elasticity: dict[str, float] | None = None,
) -> pl.DataFrame:
    """One curve per holder (CURVES), pooled within its pool. ``daily`` is :data:`DAILY`
    (read fastest grouped by holder, as :func:`holder_daily` returns it); ``holders``:
    holder_id, pool (a holder without days gets its pool's level)."""
    daily, run = holder_runs(daily)
    ids = daily["holder_id"].gather(run_starts(run.to_numpy()))
    days = daily.select(list(DAILY)[1:]).with_columns(run=run)
    return _fit(days, ids, holders, as_of, half_life_days, elasticity or {})


def _fit(
    daily: pl.DataFrame,
    ids: pl.Series,
    holders: pl.DataFrame,
    as_of: datetime,
    half_life_days: float,
    elasticity: dict[str, float],
) -> pl.DataFrame:
    """The fit over each holder's run of days: ``daily`` (run, date, spend, conversions,
    purchase_value) grouped by run, oldest first; ``ids`` each run's holder id."""
    pools = holders.select("holder_id", "pool").unique("holder_id")
    e_frame = pl.DataFrame({"pool": pools["pool"].unique().sort()}).with_columns(
        prior_e=pl.col("pool").replace_strict(
            elasticity, default=DEFAULT_ELASTICITY, return_dtype=pl.Float64
        )
    )
    # The row work runs over each holder's run of days with spend (numpy, in row order), not
    # its id: ids and pools are joined per holder (one not in ``holders`` has no pool: dropped).
    run = daily["run"]
    per_run = (
        pl.DataFrame({"holder_id": ids})
        .with_row_index("run")
        .join(pools, on="holder_id", how="left", maintain_order="left")
        .join(e_frame, on="pool", how="left", maintain_order="left")
    )
    spend = daily["spend"].to_numpy()
    spent = spend > 0
    columns = {
        "run": run.to_numpy(),
        "age": np.subtract(
            (as_of.date() - EPOCH).days, daily["date"].to_physical().to_numpy(), dtype=float
        ),
        "spend": spend,
        "conversions": _values(daily, ids, "conversions", spent),
        "value": _values(daily, ids, "purchase_value", spent),
    }
    if not spent.all():
        columns = {name: values[spent] for name, values in columns.items()}
    runs = columns.pop("run")
    first = run_starts(runs)
    sums = _holder_sums(
        first,
        **columns,
        prior_e=per_run["prior_e"].to_numpy()[runs[first]],
        half_life_days=half_life_days,
    )
    # per_run's row i is run i: each summed run's holder and pool by position, not a join
    weighted = (
        pl.DataFrame(sums)
        .hstack(per_run.select("holder_id", "pool")[runs[first]])
        .filter(pl.col("pool").is_not_null())
    )
    aov = weighted.group_by("pool").agg(
        aov=pl.col("value").sum() / pl.col("conversions").sum().clip(1e-9, None)
    )
    # one purchase's value spreads at least VALUE_CV; more where the holder's own orders do
    # (one bulk order is then as much evidence as its share of the value, not a day's worth)
    order_cv2 = pl.max_horizontal(
        pl.lit(VALUE_CV**2),
        (pl.col("order_var") / pl.col("mean_order").pow(2).clip(1e-9, None)).fill_nan(0.0),
    )
    own = (
        weighted.join(aov, on="pool")
        .with_columns(
            # half a purchase at the pool's average value keeps log() finite for a holder with none
            own_log_level=(pl.col("value") + 0.5 * pl.col("aov")).clip(1e-9, None).log()
            - pl.col("exposure").log(),
            own_var=(1.0 + order_cv2) / (pl.col("conversions") + 0.5) + DRIFT_VAR,
            log_spend=(pl.col("spend") / pl.col("weight")).log(),
        )
        .drop("pool", "aov")
    )
    # in one order (pool, holder id) before the per-pool sums below: float sums in the order
    # an unordered unique/join left gave differed in the last bits from call to call
    frame = (
        pools.join(e_frame, on="pool", how="left")
        .join(own, on="holder_id", how="left")
        .with_columns(
            elasticity=pl.col("e").fill_null(pl.col("prior_e")),
            elasticity_sd=pl.col("e_sd").fill_null(ELASTICITY_PRIOR_SD),
        )
        .sort("pool", "holder_id")
    )
    # Holders' curvatures differ, so their levels compare at one spend per pool: the log value
    # each would earn at the pool's reference spend (geometric mean of the recent spends).
    reference = frame.group_by("pool").agg(ref=pl.col("log_spend").mean().fill_null(0.0))
    frame = frame.join(reference, on="pool", how="left", maintain_order="left").with_columns(
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
    out = frame.join(prior, on="pool", how="left", maintain_order="left").with_columns(
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
    return out.select(list(CURVES)).cast(CURVES)  # type: ignore[arg-type]  # sorted above


def _values(daily: pl.DataFrame, ids: pl.Series, column: str, spent: np.ndarray) -> np.ndarray:
    """``daily[column]`` as numbers: missing on a day with spend is bad input, not a zero (on
    a day without, it is never read)."""
    values = daily[column]
    if values.null_count() and values.filter(pl.Series(spent)).null_count():
        bad = daily.filter(values.is_null() & pl.Series(spent)).head(3)
        rows = bad.with_columns(holder_id=ids.gather(bad["run"])).select(list(DAILY)).to_dicts()
        raise ValueError(f"daily {column}: null on a day with spend, e.g. {rows}")
    return values.cast(pl.Float64).to_numpy()


def _holder_sums(
    first: np.ndarray,
    *,
    age: np.ndarray,
    spend: np.ndarray,
    conversions: np.ndarray,
    value: np.ndarray,
    prior_e: np.ndarray,
    half_life_days: float,
) -> dict[str, np.ndarray]:
    """Per holder (``first``: its first row; rows grouped by holder, dates ascending; ``age``:
    each day's age in days), its days with spend summed as the fit reads them: recency weights
    ``0.5 ** (age / half_life_days)``, the curvature ``e`` (:func:`_curvature`) and the
    weighted sums of spend, spend ** e, value and purchases."""
    size = np.diff(np.r_[first, spend.size])
    # one buffer for every per-day product: at 10k ad sets fresh memory for each costs as
    # much as the arithmetic (page faults)
    scratch = np.empty(spend.size)

    def total(x: np.ndarray) -> np.ndarray:  # per holder
        return np.add.reduceat(x, first) if first.size else x[:0]

    def weighted(x: np.ndarray) -> np.ndarray:  # per holder, the recency-weighted sum
        return total(np.multiply(w, x, out=scratch))

    # the holder's mean order value and purchases per day, over its days
    count = total(conversions)
    mean_order = total(value) / np.maximum(count, 1e-9)
    per_day = count / size
    each_mean_order = np.repeat(mean_order, size)
    e, e_sd = _curvature(first, age, spend, value, each_mean_order, per_day, prior_e, scratch)
    w = _recency_weights(age, half_life_days)
    # a day's value less its purchases at the holder's mean order value: its square per
    # purchase estimates the variance of one purchase's value
    off = np.multiply(conversions, each_mean_order, out=each_mean_order)
    np.subtract(value, off, out=off)
    purchases = weighted(conversions)
    return {
        "days": size.astype(np.int64),
        "weight": total(w),
        "exposure": weighted(np.power(spend, np.repeat(e, size), out=scratch)),
        "value": weighted(value),
        "order_var": weighted(np.multiply(off, off, out=off)) / np.maximum(purchases, 1e-9),
        "mean_order": mean_order,
        "conversions": purchases,
        "spend": weighted(spend),
        "e": e,
        "e_sd": e_sd,
    }


def _recency_weights(age: np.ndarray, half_life_days: float) -> np.ndarray:
    """``0.5 ** (age / half_life_days)``, worked out once per day of age (an unknown one, NaN,
    weighs 0: it adds to no weighted sum)."""
    # fmin/fmax skip NaN without copying the known ages out (4 of 7 ms at 10k ad sets)
    youngest = np.fmin.reduce(age) if age.size else np.nan
    if np.isnan(youngest):
        return np.zeros(age.size)
    oldest = np.fmax.reduce(age)
    per_day = 0.5 ** (np.arange(youngest, oldest + 1) / half_life_days)
    known = ~np.isnan(age)
    if known.all():
        return per_day[(age - youngest).astype(np.intp)]
    return np.where(known, per_day[np.where(known, age - youngest, 0).astype(np.intp)], 0.0)


def _curvature(
    first: np.ndarray,
    age: np.ndarray,
    spend: np.ndarray,
    value: np.ndarray,
    each_mean_order: np.ndarray,
    per_day: np.ndarray,
    prior_e: np.ndarray,
    scratch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per holder: posterior mean ``e`` and sd ``e_sd`` of its curvature, combining the pool's
    prior ``prior_e`` (sd ``ELASTICITY_PRIOR_SD``) with the slope of day-to-day changes: how
    much log value moved from one day to the next when log spend did (each pair of days weighed
    by the precision the holder's purchases per day allow). ``each_mean_order``: the holder's
    mean order value on each of its rows; ``scratch``: a free buffer of a row's size.

    Differences, not levels: an efficiency that shifted for good (and the budget raises that
    follow it) moves the level once, so it cannot pass for curvature. Only days near the
    holder's recent spend count (at least ``USUAL_SPEND`` of the median of its last 7 days): a
    day cut short by a pause or a launch delivers less *because* it went badly, not the other
    way round."""
    prior_precision = 1.0 / ELASTICITY_PRIOR_SD**2
    x = np.log(spend)
    # half a purchase keeps a day without purchases on the log scale
    y = np.multiply(each_mean_order, 0.5, out=scratch)
    np.log(np.maximum(np.add(value, y, out=y), 1e-9, out=y), out=y)
    # a difference of two days carries both days' purchase noise
    precision = 1.0 / (2.0 * (1.0 + VALUE_CV**2) / (per_day + 0.5) + DAY_VAR)
    usual = reaches_share_of_week_median(spend, first, USUAL_SPEND)
    pair = np.zeros(spend.size, dtype=bool)  # the day and the one before, both usual
    pair[1:] = usual[1:] & usual[:-1] & (age[:-1] - age[1:] == 1)
    pair[first] = False  # a holder's first day has none before
    dx = np.zeros(spend.size)
    dy = np.zeros(spend.size)
    np.subtract(x[1:], x[:-1], out=dx[1:], where=pair[1:])
    np.subtract(y[1:], y[:-1], out=dy[1:], where=pair[1:])
    sxy = precision * (np.add.reduceat(np.multiply(dx, dy, out=dy), first) if first.size else x[:0])
    sxx = precision * (np.add.reduceat(np.multiply(dx, dx, out=dx), first) if first.size else x[:0])
    lo, hi = ELASTICITY_RANGE
    e = np.clip((prior_precision * prior_e + sxy) / (prior_precision + sxx), lo, hi)
    return e, np.sqrt(1.0 / (prior_precision + sxx))


def log_marginal(curves: pl.DataFrame, budget_major: np.ndarray) -> np.ndarray:
    """log of each holder's marginal return (value per extra unit of spend) at ``budget``."""
    e = curves["elasticity"].to_numpy()
    return (
        np.log(e)
        + curves["log_level"].to_numpy()
        + (e - 1.0) * np.log(np.maximum(budget_major, 1e-9))
    )


def budget_at_marginal(curves: pl.DataFrame, log_lambda: np.ndarray) -> np.ndarray:
    """The daily budget (major units) at which each holder's marginal return is ``λ``."""
    return budget_at(marginal_terms(curves), log_lambda)


def marginal_terms(curves: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``log e + log A`` and ``1 − e`` per holder: the terms of :func:`budget_at`, worked out
    once by a caller that solves for ``λ`` many times (the marginal policy's bisections)."""
    e = curves["elasticity"].to_numpy()
    return np.log(e) + curves["log_level"].to_numpy(), 1.0 - e


def budget_at(terms: tuple[np.ndarray, np.ndarray], log_lambda) -> np.ndarray:
    """:func:`budget_at_marginal` from :func:`marginal_terms`."""
    level, bend = terms
    return np.exp((level - log_lambda) / bend)
