"""Each ad set's own baseline, and the lookback window it ends at (SPEC §3-4).

The baseline is the ``baseline_days`` days before the ad set's lookback window
(``sql/select_entity_baselines.sql``), so a change shows against what came before it. The
lookback scales with the ad set's spend volume over the trailing 7 days
(:func:`entity_lookbacks`), shared by the ad sets of a CBO campaign. :func:`score_inputs`
reads what the scores need (windows and baselines) with one rollup check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from budget_pipeline import db
from budget_pipeline.config.pools import Settings
from budget_pipeline.engine.insight_pieces import check_rollup, edge_dates
from budget_pipeline.engine.insight_sums import (
    _cast,
    _query,
    _time_bounds,
    window_metrics,
    window_spend,
)
from budget_pipeline.engine.side_cursor import beside

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

# Spend volume for the lookback choice: average daily spend over the trailing 7 days. It
# covers every automatic lookback (at most 96 h), so every ad set with Insights in its
# lookback window gets a lookback.
VOLUME_WINDOW_HOURS = 7 * 24


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
    ``lookback_hours`` (a row for each distinct row, e.g. :func:`entity_lookbacks`). Left
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
        # The query groups by a row's index ("cell": one integer, not three keys), so a pair
        # listed twice would come back twice (grouped by the three keys, it came back once
        # with every sum doubled): once each, in their order (0.7 ms at 10k ad sets).
        listed = listed.unique(maintain_order=True).with_row_index("cell")
        pairs = listed.select("as_of", "lookback_hours").unique().drop_nulls("as_of")
        pairs = list(pairs.iter_rows())  # one per point and length: a handful
        constant = None
    else:
        listed = pl.DataFrame(schema=LOOKBACKS).select("adset_id", "as_of", "lookback_hours")
        listed = listed.with_columns(pl.col("lookback_hours").cast(pl.Int32()))
        listed = listed.with_row_index("cell")
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
    *,
    stored: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame | None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The window metrics (``windows`` lengths) and own baselines that scores read at
    ``eval_points``, as :func:`window_metrics` and :func:`entity_baselines` with ``settings``
    give them, read the cheap way: the rollup checked once for everything the three queries
    can read (the baselines as if every ad set had the longest lookback, a day or two before
    what shorter lookbacks read), and the 7-day spend volume (when the lookback scales with
    it) taken from the window rows if ``windows`` has that length, else summed alone
    (:func:`window_spend`). At 10k ad sets: 0.06 s, where window_metrics with the volume
    window and entity_baselines, each checking its own range, took 0.10 to 0.11 s. Outside
    a transaction the rollup check and the window metrics are read on a second cursor beside
    the rest (:func:`~budget_pipeline.engine.side_cursor.beside`); a stale rollup raises either way.

    ``stored(con)``: the baselines at ``eval_points`` if the caller has them already (those
    :func:`entity_baselines` gave at these points, stored), else None; asked on this cursor
    while the window metrics are read beside it. Baselines it gives are used as they are
    (none computed), except that a row at a point not scored is refused."""
    windows = sorted({int(w) for w in windows})
    points = list(eval_points)
    volume = None if settings.lookback_hours else VOLUME_WINDOW_HOURS
    reach = longest_lookback(settings) + 24 * settings.baseline_days
    bounds = _time_bounds(points, max(*windows, volume or 0, reach))
    with beside(con, volume not in windows or stored is not None) as side:
        # the rollup check, then the window metrics, on a second cursor while this one reads
        # the volume and the baselines (when the volume is not taken from the window rows):
        # the baselines are the longer side, so the check costs them nothing (5 ms at 10k ad
        # sets). Not beside, the check runs here first, before any sum is read.
        metrics = side.submit(_checked_window_metrics, bounds, points, windows)
        baselines = stored(con) if stored is not None else None
        if baselines is not None:
            other = set(baselines["as_of"].unique().to_list()) - set(points)
            if other:
                raise ValueError(
                    f"stored baselines: rows at {sorted(map(str, other))}, not a point scored "
                    f"({', '.join(map(str, points))})"
                )
            return metrics.result(), baselines
        recent = None
        if volume is not None and volume not in windows:
            recent = window_spend(con, points, volume, check=False)
        elif volume is not None:
            recent = metrics.result().filter(pl.col("window_hours") == volume)
        baselines = entity_baselines(
            con, points, settings=settings, entities=entities, recent=recent, check=False
        )
        return metrics.result(), baselines  # a stale rollup raises first if these reads fail


def _checked_window_metrics(
    con: duckdb.DuckDBPyConnection,
    bounds: tuple[datetime | None, datetime | None],
    points: list[datetime],
    windows: list[int],
) -> pl.DataFrame:
    """:func:`check_rollup` over ``bounds``, then :func:`window_metrics` unchecked."""
    check_rollup(con, *bounds)
    return window_metrics(con, points, windows, check=False)
