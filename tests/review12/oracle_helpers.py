"""Review 12: the decision queries as they were before the per-day rollup (commit 9f91f6e~1),
run against the same DuckDB file as an oracle for the pieces-based queries.

``oracle/*.sql`` are those three files verbatim from the repository's own history
(``git show 9f91f6e~1:sql/<name>.sql``): the hourly queries the rollup claims to reproduce to
the bit. A warehouse of random hours (sparse and steady ad sets, hours without spend, NULL
estimates) is built with the real schema and rolled up as the insights merge does."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from budget_pipeline import insights_rollup
from budget_pipeline.engine.signals import BASELINES, WINDOW_METRICS, _time_bounds
from budget_pipeline.warehouse_schema import ensure_schema

ORACLE = Path(__file__).parent / "oracle"
START = datetime(2024, 3, 1)


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


def random_hours(seed: int, days: int, adsets: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pl.datetime_range(START, START + timedelta(days=days, hours=-1), "1h", eager=True)
    frames = []
    for i in range(adsets):
        keep = rng.random(ts.len()) > [0.0, 0.3, 0.9, 0.5, 0.98][i % 5]
        n = int(keep.sum())
        conversions = rng.uniform(0.0, 2.0, n)
        estimated = rng.random(n) > 0.4
        frames.append(
            pl.DataFrame(
                {
                    "ts": ts.filter(pl.Series(keep)),
                    "campaign_id": f"c{i % 2}",
                    "adset_id": f"a{i}",
                    "spend": rng.uniform(0.0, 30.0, n) * (rng.random(n) > 0.33),
                    "impressions": rng.integers(0, 900, n),
                    "reach": rng.integers(0, 500, n),
                    "clicks": rng.integers(0, 30, n),
                    "conversions": conversions,
                    "purchase_value": conversions * rng.uniform(5.0, 70.0, n),
                    "conversions_est": np.where(estimated, conversions / 0.37, np.nan),
                    "purchase_value_est": np.where(estimated, conversions * 41.3, np.nan),
                }
            )
        )
    return pl.concat(frames).with_columns(
        date=pl.col("ts").dt.date(),
        hour=pl.col("ts").dt.hour().cast(pl.Int8),
        pulled_at=pl.col("ts"),
        conversions_est=pl.col("conversions_est").fill_nan(None),
        purchase_value_est=pl.col("purchase_value_est").fill_nan(None),
    )


def warehouse(path: Path, hours: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    """A real DuckDB file with ``hours`` in ``insights``, rolled up as the merge does."""
    con = duckdb.connect(str(path))
    ensure_schema(con)
    con.register("frame", hours.to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM frame")
    con.unregister("frame")
    insights_rollup.refresh(con)
    return con
