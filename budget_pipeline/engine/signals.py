"""Signals: window metrics, each entity's own baseline, and the normalised score components.

The heavy aggregation runs in DuckDB (``sql/select_window_metrics.sql``,
``sql/select_entity_baselines.sql``); polars turns the per-entity sums into raw metrics and
components in [0, 1] where 0.5 means "on the entity's own baseline" (SPEC §3).

Components (k = ``Settings.score_steepness``, default 2):

- ratio components use ``s = r^k / (1 + r^k)``, computed as ``1 / (1 + r^-k)`` so a huge or
  tiny r saturates at 1 or 0 instead of overflowing: ``s_roas`` (r = roas / baseline roas),
  ``s_cpa`` (r = baseline cpa / cpa, i.e. conversions per unit spend against the baseline's),
  ``s_engagement`` (r = ctr / baseline ctr) and ``s_velocity`` (r = conversions per unit spend
  in the later half of the window / the earlier half);
- ``s_frequency`` is 0.5 at or below ``Settings.frequency_threshold`` and
  ``0.5 * (threshold / frequency)^k`` above it: frequency can only pull a score down.

Missing and degenerate values (no NaN leaves this module):

- raw metrics are null when their denominator is zero: roas and cpa without spend, ctr and
  cpm without impressions, frequency without reach. ``cpa`` is +inf when there was spend but
  no conversion (the same for ``baseline_cpa``);
- a ratio component is 0.5 (no evidence either way) when either side is null (no spend in the
  window, no baseline spend, no impressions, either half of the window without spend) or both
  sides are 0; 1.0 when only the baseline side is 0 (e.g. conversions now, none in the
  baseline) and 0.0 when only the current side is 0 (e.g. spend but no conversion);
- ``s_frequency`` is 0.5 when frequency is null;
- ``velocity_trend`` (raw) is null where s_velocity is 0.5 by the rule above and +inf when
  only the earlier half had no conversion.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from budget_pipeline import db
from budget_pipeline.config.pools import Settings
from budget_pipeline.engine.credibility import evidence_z
from budget_pipeline.engine.insight_pieces import check_rollup, edge_dates, noon_dates
from budget_pipeline.sql import load_sql

SUM_COLUMNS = ("spend", "impressions", "reach", "clicks", "conversions", "purchase_value")

# window_metrics(): one row per ad set, evaluation point and window length.
WINDOW_METRICS: dict[str, pl.DataType] = {
    "adset_id": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "window_hours": pl.Int64(),
    **{
        f"{c}{half}": pl.Int64() if c in ("impressions", "reach", "clicks") else pl.Float64()
        for half in ("", "_early", "_late")
        for c in SUM_COLUMNS
    },
    "hours_with_spend": pl.Int64(),
}

# entity_baselines(): one row per ad set and evaluation point.
BASELINES: dict[str, pl.DataType] = {
    "adset_id": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "lookback_hours": pl.Int64(),
    "baseline_start": pl.Datetime("us"),
    "baseline_end": pl.Datetime("us"),
    "baseline_days_active": pl.Int64(),
    # 24-hour slots with spend, counted back from baseline_end (0 = the day just before the
    # lookback window); lets a CBO campaign count the union of its ad sets' active days.
    "baseline_active_day_offsets": pl.List(pl.Int64()),
    "baseline_spend": pl.Float64(),
    "baseline_impressions": pl.Int64(),
    "baseline_reach": pl.Int64(),
    "baseline_clicks": pl.Int64(),
    "baseline_conversions": pl.Float64(),
    "baseline_purchase_value": pl.Float64(),
    "baseline_roas": pl.Float64(),
    "baseline_cpa": pl.Float64(),
    "baseline_ctr": pl.Float64(),
    "baseline_frequency": pl.Float64(),
}

# entity_lookbacks(): the lookback chosen per ad set and evaluation point.
LOOKBACKS: dict[str, pl.DataType] = {
    "adset_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "daily_spend": pl.Float64(),
    "lookback_hours": pl.Int64(),
}

# compute_signals(): raw metrics, baselines and components per entity and evaluation point.
SIGNALS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "lookback_hours": pl.Int64(),
    "spend": pl.Float64(),
    "impressions": pl.Int64(),
    "reach": pl.Int64(),
    "clicks": pl.Int64(),
    "conversions": pl.Float64(),
    "purchase_value": pl.Float64(),
    "hours_with_spend": pl.Int64(),
    "roas": pl.Float64(),
    "cpa": pl.Float64(),
    "frequency": pl.Float64(),
    "ctr": pl.Float64(),  # percent
    "cpm": pl.Float64(),
    "velocity_early": pl.Float64(),  # conversions per unit spend, earlier half of the window
    "velocity_late": pl.Float64(),
    "velocity_trend": pl.Float64(),  # late / early
    "baseline_days_active": pl.Int64(),
    "baseline_spend": pl.Float64(),
    "baseline_roas": pl.Float64(),
    "baseline_cpa": pl.Float64(),
    "baseline_ctr": pl.Float64(),
    "baseline_frequency": pl.Float64(),
    "s_roas": pl.Float64(),
    "s_cpa": pl.Float64(),
    "s_frequency": pl.Float64(),
    "s_engagement": pl.Float64(),
    "s_velocity": pl.Float64(),
    # standard deviations by which the window's ROAS differs from the baseline's, given its
    # purchase count (engine.credibility): the score triggers act only beyond credible_z
    "evidence_z": pl.Float64(),
}

# Spend volume for the lookback choice: average daily spend over the trailing 7 days. It
# covers every automatic lookback (at most 96 h), so every ad set with Insights in its
# lookback window gets a lookback.
VOLUME_WINDOW_HOURS = 7 * 24


def _query(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    params: dict,
    schema: dict[str, pl.DataType],
) -> pl.DataFrame:
    """Run ``sql/<statement>.sql`` and return its rows with ``schema``'s dtypes and order."""
    # execute() (unlike con.sql()) supersedes a caller's half-read result instead of raising;
    # the result comes over Arrow column by column (at 10k ad sets and a few evaluation points
    # that is 100k+ rows: fetched row by row into Python tuples it took seconds). DuckDB warns
    # that Arrow from execute() copies the result once: an aggregate, so that copy is cheap.
    result = con.execute(load_sql(statement), params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        frame = pl.from_arrow(result.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def _time_bounds(
    points: Sequence[datetime], longest_hours: float
) -> tuple[datetime | None, datetime | None]:
    """[earliest point − ``longest_hours``, latest point): every hour a query can read."""
    if not points:
        return None, None
    return min(points) - timedelta(hours=longest_hours), max(points)


def _cast(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def window_metrics(
    con: duckdb.DuckDBPyConnection,
    eval_points: Sequence[datetime],
    windows: Sequence[int],
    *,
    check: bool = True,
) -> pl.DataFrame:
    """Insights sums per ad set over ``[as_of - window, as_of)`` for each point and window.

    Also the earlier/later half of each window and ``hours_with_spend``. An ad set appears
    only where it has at least one hourly row in the window. Returns :data:`WINDOW_METRICS`.
    ``check=False`` skips :func:`check_rollup` for a caller that checked a range covering
    every window already (:func:`score_inputs`).
    """
    windows = [int(w) for w in windows]
    lo, hi = _time_bounds(list(eval_points), max(windows, default=0))
    bounds = [
        bound
        for point in eval_points
        for w in windows
        for bound in (point, point - timedelta(hours=w), point - timedelta(minutes=30 * w))
    ]
    if check:
        check_rollup(con, lo, hi)
    params = {
        "eval_points": list(eval_points),
        "windows": windows,
        "lo": lo,
        "hi": hi,
        # the middle of a window that ends at midnight is a noon when its length is 24 h
        # times an odd number (72 h, 168 h): read that day as two halves, not by the hour
        "edge_dates": edge_dates([lo, hi, *bounds], halves=True),
        "noon_dates": noon_dates([lo, hi, *bounds]),
    }
    return _query(con, "select_window_metrics", params, WINDOW_METRICS)


# The lengths lookback_expr chooses from (SPEC §4) when Settings.lookback_hours is not set.
AUTO_LOOKBACKS = (48, 72, 96)


def lookback_expr(daily_spend: pl.Expr, settings: Settings) -> pl.Expr:
    """Vectorised :meth:`Settings.lookback_for` (SPEC §4); a test keeps the two in step."""
    if settings.lookback_hours is not None:
        return pl.lit(settings.lookback_hours, dtype=pl.Int64())
    short, middle, long = AUTO_LOOKBACKS
    return (
        pl.when(daily_spend >= 2000)
        .then(short)
        .when(daily_spend <= 200)
        .then(long)
        .otherwise(middle)
        .cast(pl.Int64())
    )


def longest_lookback(settings: Settings) -> int:
    """The longest lookback :func:`lookback_expr` can give under ``settings``."""
    return settings.lookback_hours or max(AUTO_LOOKBACKS)


def cbo_campaign_ids(entities: pl.DataFrame | None) -> list[str]:
    """Campaigns that hold the budget of their ad sets (campaign rows with a daily budget)."""
    if entities is None or entities.height == 0:
        return []
    cbo = entities.filter(
        (pl.col("entity_type") == "campaign") & (pl.col("budget_type") == "daily")
    )
    return cbo["entity_id"].unique().sort().to_list()


# window_spend(): the spend sum alone, per ad set and evaluation point.
WINDOW_SPEND: dict[str, pl.DataType] = {
    c: WINDOW_METRICS[c] for c in ("adset_id", "campaign_id", "as_of", "spend")
}


def window_spend(
    con: duckdb.DuckDBPyConnection,
    eval_points: Sequence[datetime],
    hours: int,
    *,
    check: bool = True,
) -> pl.DataFrame:
    """The ``spend`` and ``campaign_id`` columns of :func:`window_metrics` for one window
    length, the same values and ad sets, without the other sums (a fifth of the work at the
    7-day volume window). Returns :data:`WINDOW_SPEND`; ``check`` as in window_metrics."""
    lo, hi = _time_bounds(list(eval_points), int(hours))
    if check:
        check_rollup(con, lo, hi)
    bounds = [bound for point in eval_points for bound in (point, point - timedelta(hours=hours))]
    params = {
        "eval_points": list(eval_points),
        "hours": int(hours),
        "lo": lo,
        "hi": hi,
        "edge_dates": edge_dates([lo, hi, *bounds]),
    }
    return _query(con, "select_window_spend", params, WINDOW_SPEND)


def entity_lookbacks(
    con: duckdb.DuckDBPyConnection,
    eval_points: Sequence[datetime],
    settings: Settings,
    entities: pl.DataFrame | None = None,
    recent: pl.DataFrame | None = None,
    *,
    check: bool = True,
) -> pl.DataFrame:
    """The lookback per ad set and point, scaled by spend volume (``Settings.lookback_for``).

    Volume = average daily spend over the 7 days before ``as_of``. The ad sets of a CBO
    campaign (see :func:`cbo_campaign_ids`; ``entities`` is AD_ENTITIES or ENTITIES) share
    their campaign's volume and so one lookback, which lets the campaign be scored on their
    sums. An explicit ``Settings.lookback_hours`` gives every ad set that length. Lists the
    ad sets with Insights in the 7 days; returns :data:`LOOKBACKS`. ``recent``: those 7-day
    sums if the caller already has them (:data:`VOLUME_WINDOW_HOURS` rows of
    :func:`window_metrics` or :func:`window_spend` at ``eval_points``), else they are queried.
    """
    if recent is None:
        recent = window_spend(con, eval_points, VOLUME_WINDOW_HOURS, check=check)
    cbo = cbo_campaign_ids(entities)
    out = (
        recent.with_columns(
            volume=pl.when(pl.col("campaign_id").is_in(cbo))
            .then(pl.col("spend").sum().over("campaign_id", "as_of"))
            .otherwise(pl.col("spend"))
        )
        .with_columns(daily_spend=pl.col("volume") / (VOLUME_WINDOW_HOURS / 24))
        .with_columns(lookback_hours=lookback_expr(pl.col("daily_spend"), settings))
    )
    return _cast(out.select(list(LOOKBACKS)), LOOKBACKS)


def _day_offsets(lo: np.ndarray, hi: np.ndarray, days: int) -> pl.Series:
    """The set bits below ``days`` of each 126-bit mask (bits 0-62 in ``lo``, 63-125 in
    ``hi``) as a sorted list per row: ``baseline_active_day_offsets`` from the query's mask.
    Decoded here in numpy (a list_filter over every offset in SQL cost 15 ms at 10k ad
    sets, this 2 ms)."""
    words = [w for w, first in ((lo, 0), (hi, 63)) if first < days]
    bits = np.concatenate(
        [
            # each word's bytes little-endian, each byte's bits lowest first: bit i at [:, i]
            np.unpackbits(
                np.ascontiguousarray(w, dtype="<i8").view(np.uint8).reshape(-1, 8),
                axis=1,
                bitorder="little",
            )[:, :63]
            for w in words
        ],
        axis=1,
    )[:, :days]
    day = np.flatnonzero(bits) % days  # row-major: each row's offsets ascending
    ends = np.zeros(len(lo) + 1, dtype=np.int32)
    np.cumsum(bits.sum(axis=1), out=ends[1:])
    lists = pa.ListArray.from_arrays(pa.array(ends), pa.array(day, type=pa.int64()))
    return pl.Series("baseline_active_day_offsets", lists)


def entity_baselines(
    con: duckdb.DuckDBPyConnection,
    eval_points: Sequence[datetime],
    *,
    baseline_days: int | None = None,
    lookback_hours: int | pl.DataFrame | None = None,
    settings: Settings | None = None,
    entities: pl.DataFrame | None = None,
    recent: pl.DataFrame | None = None,
    check: bool = True,
) -> pl.DataFrame:
    """Each ad set's own baseline over the ``baseline_days`` days before its lookback window.

    The baseline is ``[as_of - lookback - baseline_days, as_of - lookback)``: it excludes the
    current window. ``lookback_hours`` is one length for every ad set (rows for every ad set
    with Insights in ``[baseline start, as_of)``), or a frame with ``adset_id``, ``as_of`` and
    ``lookback_hours`` (rows for exactly those pairs, e.g. :func:`entity_lookbacks`). Left
    out, both come from ``settings``: ``baseline_days``, and ``lookback_hours`` if set, else
    the per-ad-set lookback scaled by spend volume (:func:`entity_lookbacks`, with
    ``entities`` to find CBO campaigns; ``recent`` as in :func:`entity_lookbacks`). Returns
    :data:`BASELINES`; ``check`` as in :func:`window_metrics`.
    """
    if baseline_days is None or lookback_hours is None:
        if settings is None:
            raise TypeError("entity_baselines needs settings, or baseline_days and lookback_hours")
        if baseline_days is None:
            baseline_days = settings.baseline_days
        if lookback_hours is None:
            lookback_hours = settings.lookback_hours or entity_lookbacks(
                con, eval_points, settings, entities, recent, check=check
            )
    days = int(baseline_days)
    if isinstance(lookback_hours, pl.DataFrame):
        # staged as a frame: as three 10k-long list parameters, binding and planning the
        # query took 15 ms at 10k ad sets
        listed = lookback_hours.select(
            pl.col("adset_id").cast(pl.Utf8()),
            pl.col("as_of").cast(pl.Datetime("us")),
            pl.col("lookback_hours").cast(pl.Int32()),
        )
        pairs = listed.select("as_of", "lookback_hours").unique().drop_nulls("as_of")
        pairs = list(pairs.iter_rows())  # one per point and length: a handful
        constant = None
    else:
        listed = pl.DataFrame(schema=LOOKBACKS).select("adset_id", "as_of", "lookback_hours")
        listed = listed.with_columns(pl.col("lookback_hours").cast(pl.Int32()))
        constant = int(lookback_hours)
        pairs = [(p, constant) for p in eval_points]
    pairs = [(p, int(h)) for p, h in pairs]
    lo, hi = _time_bounds([p for p, _ in pairs], max((h for _, h in pairs), default=0) + 24 * days)
    bounds = [
        bound
        for as_of, hours in pairs
        for end in [as_of - timedelta(hours=hours)]
        for bound in (as_of, end, end - timedelta(days=days))
    ]
    if check:
        check_rollup(con, lo, hi)
    params = {
        "eval_points": list(eval_points),
        "baseline_days": days,
        "lookback_hours": constant,
        "lo": lo,
        "hi": hi,
        "edge_dates": edge_dates([lo, hi, *bounds]),
    }
    with db.staged(con, "staged_lookbacks", listed):
        frame = _query(con, "select_entity_baselines", params, _BASELINE_QUERY)
    offsets = _day_offsets(
        frame["active_mask_lo"].to_numpy(), frame["active_mask_hi"].to_numpy(), days
    )
    return _cast(frame.with_columns(offsets), BASELINES)


# select_entity_baselines: BASELINES with the active days as a mask (see _day_offsets).
_BASELINE_QUERY: dict[str, pl.DataType] = {
    **{c: t for c, t in BASELINES.items() if c != "baseline_active_day_offsets"},
    "active_mask_lo": pl.Int64(),
    "active_mask_hi": pl.Int64(),
}


def score_inputs(
    con: duckdb.DuckDBPyConnection,
    eval_points: Sequence[datetime],
    settings: Settings,
    windows: Sequence[int],
    entities: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The window metrics (``windows`` lengths) and own baselines that scores read at
    ``eval_points``, as :func:`window_metrics` and :func:`entity_baselines` with ``settings``
    give them, read the cheap way: the rollup checked once for everything the three queries
    read, and the 7-day spend volume (when the lookback scales with it) taken from the
    window rows if ``windows`` has that length, else summed alone (:func:`window_spend`)."""
    windows = sorted({int(w) for w in windows})
    points = list(eval_points)
    volume = None if settings.lookback_hours else VOLUME_WINDOW_HOURS
    reach = longest_lookback(settings) + 24 * settings.baseline_days
    check_rollup(con, *_time_bounds(points, max(*windows, volume or 0, reach)))
    metrics = window_metrics(con, points, windows, check=False)
    recent = None
    if volume in windows:
        recent = metrics.filter(pl.col("window_hours") == volume)
    elif volume is not None:
        recent = window_spend(con, points, volume, check=False)
    baselines = entity_baselines(
        con, points, settings=settings, entities=entities, recent=recent, check=False
    )
    return metrics, baselines


# --- CBO campaigns: sums of their ad sets --------------------------------------------------


def _as_entities(frame: pl.DataFrame) -> pl.DataFrame:
    if "entity_id" in frame.columns:
        return frame
    return frame.with_columns(
        entity_id=pl.col("adset_id"), entity_type=pl.lit("adset", dtype=pl.Utf8())
    )


def entity_windows(windows: pl.DataFrame, campaign_ids: Sequence[str]) -> pl.DataFrame:
    """Window metrics per entity: every ad set, plus the sums of ``campaign_ids``' ad sets.

    Keyed by ``entity_id``/``entity_type`` (``"adset"`` | ``"campaign"``). A campaign's
    ``hours_with_spend`` is its busiest ad set's (a lower bound).
    """
    adsets = _as_entities(windows)
    sums = [c for c in WINDOW_METRICS if c.split("_early")[0].split("_late")[0] in SUM_COLUMNS]
    campaigns = (
        windows.filter(pl.col("campaign_id").is_in(list(campaign_ids)))
        .group_by("campaign_id", "as_of", "window_hours")
        .agg(*[pl.col(c).sum() for c in sums], pl.col("hours_with_spend").max())
        .with_columns(
            entity_id=pl.col("campaign_id"), entity_type=pl.lit("campaign", dtype=pl.Utf8())
        )
    )
    return pl.concat([adsets, campaigns], how="diagonal_relaxed")


def entity_baseline_sums(baselines: pl.DataFrame, campaign_ids: Sequence[str]) -> pl.DataFrame:
    """Baselines per entity: every ad set, plus the sums of ``campaign_ids``' ad sets.

    A campaign's active days are the union of its ad sets' (by day offset); its lookback is
    the longest of theirs (they share one when chosen by :func:`entity_lookbacks`).
    """
    adsets = _as_entities(baselines)
    sums = [c for c in BASELINES if c.removeprefix("baseline_") in SUM_COLUMNS]
    campaigns = (
        baselines.filter(pl.col("campaign_id").is_in(list(campaign_ids)))
        .group_by("campaign_id", "as_of")
        .agg(
            *[pl.col(c).sum() for c in sums],
            pl.col("lookback_hours").max(),
            pl.col("baseline_start").min(),
            pl.col("baseline_end").max(),
            pl.col("baseline_active_day_offsets").explode().drop_nulls().unique().sort(),
        )
        .with_columns(
            baseline_days_active=pl.col("baseline_active_day_offsets").list.len().cast(pl.Int64),
            entity_id=pl.col("campaign_id"),
            entity_type=pl.lit("campaign", dtype=pl.Utf8()),
        )
    )
    return pl.concat([adsets, campaigns], how="diagonal_relaxed")


# --- raw metrics and components -------------------------------------------------------------


def _per(num: pl.Expr, den: pl.Expr, scale: float = 1.0) -> pl.Expr:
    """``scale * num / den``, null when ``den`` is 0 or null."""
    return pl.when(den > 0).then(scale * num / den)


def _cpa(spend: pl.Expr, conversions: pl.Expr) -> pl.Expr:
    """spend / conversions; +inf with spend but no conversion; null without spend."""
    return (
        pl.when(spend <= 0)
        .then(None)
        .when(conversions > 0)
        .then(spend / conversions)
        .otherwise(float("inf"))
    )


def raw_metrics(prefix: str = "") -> list[pl.Expr]:
    """roas, cpa, frequency, ctr (%) and cpm from the sum columns named ``{prefix}spend`` …"""

    def col(name: str) -> pl.Expr:
        return pl.col(f"{prefix}{name}").cast(pl.Float64())

    return [
        _per(col("purchase_value"), col("spend")).alias(f"{prefix}roas"),
        _cpa(col("spend"), col("conversions")).alias(f"{prefix}cpa"),
        _per(col("impressions"), col("reach")).alias(f"{prefix}frequency"),
        _per(col("clicks"), col("impressions"), 100.0).alias(f"{prefix}ctr"),
        _per(col("spend"), col("impressions"), 1000.0).alias(f"{prefix}cpm"),
    ]


def relative_component(current: pl.Expr, baseline: pl.Expr, k: float) -> pl.Expr:
    """``r^k / (1 + r^k)`` for r = current / baseline (both >= 0), with the module's rules."""
    current = current.fill_nan(None)
    baseline = baseline.fill_nan(None)
    return (
        pl.when(current.is_null() | baseline.is_null())
        .then(0.5)
        .when((current == 0) & (baseline == 0))
        .then(0.5)
        .when(baseline == 0)
        .then(1.0)
        .when(current == 0)
        .then(0.0)
        .otherwise(1.0 / (1.0 + (current / baseline) ** (-k)))
        .fill_nan(0.5)
        .clip(0.0, 1.0)
    )


def frequency_component(frequency: pl.Expr, threshold: float, k: float) -> pl.Expr:
    """0.5 at or below ``threshold``, ``0.5 * (threshold / frequency)^k`` above it."""
    frequency = frequency.fill_nan(None)
    return (
        pl.when(frequency.is_null() | (frequency <= threshold))
        .then(0.5)
        .otherwise(0.5 * (threshold / frequency) ** k)
        .fill_nan(0.5)
        .clip(0.0, 0.5)
    )


def compute_signals(
    windows: pl.DataFrame, baselines: pl.DataFrame, settings: Settings
) -> pl.DataFrame:
    """Raw metrics and components per entity, each over its own lookback window.

    ``windows`` is :func:`window_metrics` output (or :func:`entity_windows`), any number of
    window lengths; ``baselines`` is :func:`entity_baselines` output (or
    :func:`entity_baseline_sums`). Each baseline row picks the window row whose
    ``window_hours`` equals its ``lookback_hours``; a window without a baseline row, or a
    baseline without activity in its window, gives no row. Baseline ratios are recomputed
    from the sums. Returns :data:`SIGNALS`, never NaN.
    """
    k = settings.score_steepness
    keys = ["entity_id", "entity_type", "as_of"]
    base_cols = [
        "lookback_hours",
        "baseline_days_active",
        *(f"baseline_{c}" for c in SUM_COLUMNS),
    ]
    base = _as_entities(baselines).select(*keys, *base_cols)
    joined = _as_entities(windows).join(
        base,
        left_on=[*keys, "window_hours"],
        right_on=[*keys, "lookback_hours"],
        how="inner",
    )
    joined = joined.with_columns(lookback_hours=pl.col("window_hours"))
    if joined.height == 0:
        return pl.DataFrame(schema=SIGNALS)

    def rate(half: str) -> pl.Expr:
        return _per(pl.col(f"conversions{half}"), pl.col(f"spend{half}"))

    # Credibility: m pseudo-conversions at the entity's own baseline CPA and order value are
    # added to the current window, so a handful of conversions (or none, by Poisson chance)
    # stays near "on baseline" while strong evidence still moves the score. m = 0 disables.
    m = settings.evidence_conversions
    has_base = pl.col("baseline_conversions") > 0
    pseudo_spend = (
        pl.when(has_base)
        .then(m * pl.col("baseline_spend") / pl.col("baseline_conversions"))
        .otherwise(0.0)
    )
    pseudo_value = (
        pl.when(has_base)
        .then(m * pl.col("baseline_purchase_value") / pl.col("baseline_conversions"))
        .otherwise(0.0)
    )
    pseudo_conv = pl.when(has_base).then(pl.lit(m)).otherwise(0.0)
    shrunk_roas = _per(pl.col("purchase_value") + pseudo_value, pl.col("spend") + pseudo_spend)
    shrunk_rate = _per(pl.col("conversions") + pseudo_conv, pl.col("spend") + pseudo_spend)

    out = joined.with_columns(
        *raw_metrics(),
        *raw_metrics("baseline_"),
        velocity_early=rate("_early"),
        velocity_late=rate("_late"),
        # columns, not expressions inlined in the components: read four times there, they
        # cost 9 of compute_signals' 26 ms at 10k ad sets (dropped by the final cast)
        shrunk_roas=shrunk_roas,
        shrunk_rate=shrunk_rate,
    ).with_columns(
        velocity_trend=pl.when(
            pl.col("velocity_early").is_null()
            | pl.col("velocity_late").is_null()
            | ((pl.col("velocity_early") == 0) & (pl.col("velocity_late") == 0))
        )
        .then(None)
        .when(pl.col("velocity_early") == 0)
        .then(float("inf"))
        .otherwise(pl.col("velocity_late") / pl.col("velocity_early"))
        # inf / inf (rates of sub-normal spends) is undefined: no trend, like no data
        .fill_nan(None),
        s_roas=relative_component(pl.col("shrunk_roas"), pl.col("baseline_roas"), k),
        s_cpa=relative_component(
            pl.col("shrunk_rate"),
            _per(pl.col("baseline_conversions"), pl.col("baseline_spend")),
            k,
        ),
        s_frequency=frequency_component(pl.col("frequency"), settings.frequency_threshold, k),
        s_engagement=relative_component(pl.col("ctr"), pl.col("baseline_ctr"), k),
        s_velocity=relative_component(pl.col("velocity_late"), pl.col("velocity_early"), k),
        evidence_z=evidence_z(
            pl.col("conversions"),
            pl.when(pl.col("baseline_roas") > 0).then(pl.col("roas") / pl.col("baseline_roas")),
        ),
    )
    return _cast(out, SIGNALS).sort("as_of", "entity_type", "entity_id")
