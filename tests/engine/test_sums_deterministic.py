"""The decision queries' sums do not depend on the order DuckDB adds the rows in.

A float sum is order-dependent (``(a + b) + c != a + (b + c)`` in the last bits), and DuckDB
adds in whatever order its threads and the file's row groups give it: the same Insights could
give a score a hair either side of a threshold on a rerun. The queries sum as DECIMAL, which
is exact. Here the same rows, stored in time order in one file and shuffled in another and
read with 1 and 2 threads, must give bit-identical windows, baselines and daily figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from budget_pipeline import insights_rollup
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.signals import entity_baselines, window_metrics
from budget_pipeline.warehouse_schema import ensure_schema

START = datetime(2024, 3, 1)
DAYS, ADSETS = 20, 60
AS_OFS = [START + timedelta(days=DAYS - 1, hours=6), START + timedelta(days=DAYS)]


def _rows(seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    hours = DAYS * 24
    ts = np.array([START + timedelta(hours=h) for h in range(hours)], dtype="datetime64[us]")
    n = hours * ADSETS
    stamp = np.tile(ts, ADSETS)
    spend = rng.uniform(0.0, 40.0, n) * (rng.random(n) > 0.2)  # floats of 15+ digits
    conversions = rng.uniform(0.0, 3.0, n)
    return pl.DataFrame(
        {
            "date": stamp.astype("datetime64[D]"),
            "hour": (stamp.astype("datetime64[h]").astype(np.int64) % 24).astype(np.int8),
            "ts": stamp,
            "campaign_id": np.repeat([f"c{i // 6}" for i in range(ADSETS)], hours),
            "adset_id": np.repeat([f"a{i}" for i in range(ADSETS)], hours),
            "spend": spend,
            "impressions": rng.integers(0, 5000, n),
            "reach": rng.integers(0, 3000, n),
            "clicks": rng.integers(0, 80, n),
            "conversions": conversions,
            "purchase_value": conversions * rng.uniform(10.0, 90.0, n),
            "pulled_at": stamp,
            "conversions_est": conversions * rng.uniform(1.0, 1.3, n),
            "purchase_value_est": conversions * rng.uniform(10.0, 120.0, n),
        }
    )


def _warehouse(path, frame: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    ensure_schema(con)
    con.register("frame", frame.to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM frame")
    con.unregister("frame")
    insights_rollup.refresh(con)  # as the insights merge does
    return con


def _decision_inputs(con: duckdb.DuckDBPyConnection, threads: int) -> list[pl.DataFrame]:
    con.execute(f"SET threads = {threads}")
    return [
        window_metrics(con, AS_OFS, [24, 48, 72, 168]),
        entity_baselines(con, AS_OFS, baseline_days=7, lookback_hours=72),
        daily_performance(con, AS_OFS[-1], 14).sort("adset_id", "date"),  # in no order
    ]


def test_sums_are_the_same_in_any_row_order_and_thread_count(tmp_path):
    rows = _rows()
    in_order = _warehouse(tmp_path / "ordered.duckdb", rows)
    shuffled = _warehouse(
        tmp_path / "shuffled.duckdb", rows.sample(fraction=1.0, shuffle=True, seed=3)
    )
    reference = _decision_inputs(in_order, 1)
    assert reference[0].height == ADSETS * len(AS_OFS) * 4
    assert reference[1].height == ADSETS * len(AS_OFS)
    assert reference[2].height == ADSETS * 14
    # the sums are the rows' sums (to DECIMAL(38,10)'s rounding of each row)
    expected = rows.filter(
        pl.col("ts") >= AS_OFS[-1] - timedelta(hours=168), pl.col("ts") < AS_OFS[-1]
    )["spend"].sum()
    got = reference[0].filter(pl.col("as_of") == AS_OFS[-1], pl.col("window_hours") == 168)
    assert abs(got["spend"].sum() - expected) < 1e-6
    for con, threads in ((in_order, 2), (shuffled, 1), (shuffled, 2)):
        for want, frame in zip(reference, _decision_inputs(con, threads), strict=True):
            assert frame.equals(want), (threads, frame.columns)
