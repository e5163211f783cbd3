"""Review 12: the decision queries as they were before the per-day rollup (commit 9f91f6e~1),
run against the same DuckDB file as an oracle for the pieces-based queries.

``oracle/*.sql`` are those three files verbatim from the repository's own history
(``git show 9f91f6e~1:sql/<name>.sql``): the hourly queries the rollup claims to reproduce to
the bit. The warehouse of random hours they run on is ``tests/hourly_insights.py``'s."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl

from budget_pipeline.engine.signals import BASELINES, WINDOW_METRICS, _time_bounds

ORACLE = Path(__file__).parent / "oracle"


def old_query(con, name: str, params: dict, schema: dict | None = None) -> pl.DataFrame:
    result = con.execute((ORACLE / f"{name}.sql").read_text(), params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        frame = pl.from_arrow(result.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()]) if schema else frame


def old_window_metrics(con, points, windows) -> pl.DataFrame:
    lo, hi = _time_bounds(points, max(windows))
    params = {"eval_points": points, "windows": windows, "lo": lo, "hi": hi}
    return old_query(con, "select_window_metrics", params, WINDOW_METRICS)


def old_entity_baselines(con, points, baseline_days: int, lookback_hours: int) -> pl.DataFrame:
    lo, hi = _time_bounds(points, lookback_hours + 24 * baseline_days)
    params = {
        "eval_points": points,
        "baseline_days": baseline_days,
        "lookback_hours": lookback_hours,
        "lookback_adset_ids": [],
        "lookback_as_ofs": [],
        "lookback_hours_each": [],
        "lo": lo,
        "hi": hi,
    }
    return old_query(con, "select_entity_baselines", params, BASELINES)


def old_daily_performance(con, as_of, days) -> pl.DataFrame:
    return old_query(con, "select_daily_performance", {"as_of": as_of, "days": days})
