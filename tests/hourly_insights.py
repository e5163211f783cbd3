"""Random hourly Insights for the decision-query tests, and a real DuckDB warehouse holding
them rolled up as the insights merge does (shared by tests/engine/test_insight_pieces.py,
tests/engine/test_signals_reference.py and review 12's oracle tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from budget_pipeline import insights_rollup
from budget_pipeline.warehouse_schema import ensure_schema

START = datetime(2024, 3, 1)


def random_hours(seed: int, days: int, adsets: int = 5) -> pl.DataFrame:
    """``days`` days of hours from START for ``adsets`` ad sets, steady to sparse: a4 has about
    one hour every two days, so a baseline day is often active by one hour alone (the hour of
    day that splits a day piece between two days). A third of the hours without spend, odd
    cents and long fractions, NULL estimates on about 40 % of the hours."""
    rng = np.random.default_rng(seed)
    ts = pl.datetime_range(START, START + timedelta(days=days, hours=-1), "1h", eager=True)
    frames = []
    for i in range(adsets):
        keep = rng.random(ts.len()) > [0.0, 0.3, 0.9, 0.5, 0.98][i % 5]
        n = int(keep.sum())
        conversions = rng.uniform(0.0, 2.0, n)
        estimated = rng.random(n) > 0.4
        spend = rng.uniform(0.0, 30.0, n) * (rng.random(n) > 0.33)
        frames.append(
            adset_hours(
                rng, ts.filter(pl.Series(keep)), f"c{i % 2}", f"a{i}", spend, conversions, estimated
            )
        )
    return as_insights(frames)


def adset_hours(rng, ts, campaign_id, adset_id, spend, conversions, estimated) -> pl.DataFrame:
    """One ad set's hours at ``ts``: the given spend and conversions, random delivery and
    order values, estimates (matured values) where ``estimated``, NaN elsewhere."""
    n = len(ts)
    return pl.DataFrame(
        {
            "ts": ts,
            "campaign_id": campaign_id,
            "adset_id": adset_id,
            "spend": spend,
            "impressions": rng.integers(0, 900, n),
            "reach": rng.integers(0, 500, n),
            "clicks": rng.integers(0, 30, n),
            "conversions": conversions,
            "purchase_value": conversions * rng.uniform(5.0, 70.0, n),
            "conversions_est": np.where(estimated, conversions * 1.17, np.nan),
            "purchase_value_est": np.where(estimated, conversions * 41.3, np.nan),
        }
    )


def as_insights(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """:func:`adset_hours` frames as ``insights`` rows (date, hour, pulled_at; estimates not
    yet matured are NULL)."""
    return pl.concat(frames).with_columns(
        date=pl.col("ts").dt.date(),
        hour=pl.col("ts").dt.hour().cast(pl.Int8),
        pulled_at=pl.col("ts"),
        conversions_est=pl.col("conversions_est").fill_nan(None),
        purchase_value_est=pl.col("purchase_value_est").fill_nan(None),
    )


def warehouse(path: Path, hours: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    """A real DuckDB file with ``hours`` in ``insights``, rolled up as the merge does; the
    frame stays registered as ``frame`` (a test may write more of it around the merge)."""
    con = duckdb.connect(str(path))
    ensure_schema(con)
    con.register("frame", hours.to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM frame")
    insights_rollup.refresh(con)
    return con


def daily_from_the_hours(
    con: duckdb.DuckDBPyConnection, as_of: datetime, days: int
) -> pl.DataFrame:
    """``daily_performance``'s rows read straight from the hours (ids as strings, no rollup,
    no keys): per ad set and date over ``[as_of - days, as_of)``."""
    return con.sql(
        "SELECT adset_id, max(campaign_id) AS campaign_id, date, "
        "CAST(sum(CAST(spend AS DECIMAL(38, 10))) AS DOUBLE) AS spend, "
        "CAST(sum(CAST(coalesce(conversions_est, conversions) AS DECIMAL(38, 10))) AS DOUBLE) "
        "AS conversions, "
        "CAST(sum(CAST(coalesce(purchase_value_est, purchase_value) AS DECIMAL(38, 10))) "
        "AS DOUBLE) AS purchase_value "
        "FROM insights WHERE ts >= $lo AND ts < $hi GROUP BY adset_id, date",
        params={"lo": as_of - timedelta(days=days), "hi": as_of},
    ).pl()


def rollup_keys_disagreeing(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of ``insights_daily`` whose ``adset_key``/``campaign_key`` are not their ids' keys
    in ``entity_keys`` (a missing key counts)."""
    return con.execute(
        "SELECT count(*) FROM insights_daily d "
        "LEFT JOIN entity_keys a ON a.entity_id = d.adset_id "
        "LEFT JOIN entity_keys c ON c.entity_id = d.campaign_id "
        "WHERE a.entity_key IS DISTINCT FROM d.adset_key "
        "OR c.entity_key IS DISTINCT FROM d.campaign_key"
    ).fetchall()[0][0]
