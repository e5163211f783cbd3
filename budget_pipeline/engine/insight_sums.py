"""Insights sums per ad set over trailing windows, read from the per-day rollup.

:func:`window_metrics` (``sql/select_window_metrics.sql``): every sum over ``[as_of - window,
as_of)``, and the spend and conversions over each half of the window, per ad set, evaluation
point and window length;
:func:`window_spend` (``sql/select_window_spend.sql``): the spend alone, for the 7-day volume
that picks each ad set's lookback (:mod:`~budget_pipeline.engine.baselines`). Both read the
Insights as pieces (:mod:`~budget_pipeline.engine.insight_pieces`) and sum exactly (DECIMAL),
so a sum does not depend on the order DuckDB adds the rows in.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from budget_pipeline.engine.insight_pieces import check_rollup, edge_dates, noon_dates
from budget_pipeline.sql import load_sql

SUM_COLUMNS = ("spend", "impressions", "reach", "clicks", "conversions", "purchase_value")
# The sums also split into the window's earlier and later half: only what the velocity trend
# reads (conversions per unit spend in each half). The other four halves, read by nothing,
# cost a sixth of the query at 10k ad sets.
HALF_COLUMNS = ("spend", "conversions")

# window_metrics(): one row per ad set, evaluation point and window length.
WINDOW_METRICS: dict[str, pl.DataType] = {
    "adset_id": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "window_hours": pl.Int64(),
    **{
        c: pl.Int64() if c in ("impressions", "reach", "clicks") else pl.Float64()
        for c in SUM_COLUMNS
    },
    **{f"{c}{half}": pl.Float64() for half in ("_early", "_late") for c in HALF_COLUMNS},
    "hours_with_spend": pl.Int64(),
}

# window_spend(): the spend sum alone, per ad set and evaluation point.
WINDOW_SPEND: dict[str, pl.DataType] = {
    c: WINDOW_METRICS[c] for c in ("adset_id", "campaign_id", "as_of", "spend")
}


_ARROW_WARNING = threading.Lock()  # see _query


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
    # catch_warnings() saves and restores the process-wide filters: two threads inside it at
    # once (score_inputs reads on a second cursor) restore each other's, leaving the filter
    # behind. One at a time; the polars conversion stays outside.
    with _ARROW_WARNING, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        table = result.to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _cast(frame, schema)


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

    Also the spend and conversions of the earlier/later half of each window
    (:data:`HALF_COLUMNS`) and ``hours_with_spend``. An ad set appears
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
