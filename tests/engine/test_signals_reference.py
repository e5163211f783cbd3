"""The scoped window and baseline queries against a plain reference over every row.

The queries scan only the hours between the earliest window/baseline start and the latest
evaluation point, sum as DECIMAL and keep the active days as bits of a mask. The reference
here reads the whole table in polars the straightforward way (every ad set of ``insights``,
every row filtered per ad set and point, float sums, a set of day offsets), as the queries did
before issue 11. The small account has an ad set with Insights only before the scanned hours,
one only inside its lookback window, one spending on alternate days, one spending a cent
on some hours, and a listed lookback pair for an ad set with no Insights.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from hourly_insights import adset_hours, as_insights, warehouse

from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.signals import (
    BASELINES,
    WINDOW_METRICS,
    entity_baselines,
    window_metrics,
)

START = datetime(2024, 3, 1)
DAYS = 14
AS_OFS = [START + timedelta(days=11, hours=6), START + timedelta(days=DAYS)]
WINDOWS = [24, 48, 72, 168]
BASELINE_DAYS = 7
SUMS = ["spend", "impressions", "reach", "clicks", "conversions", "purchase_value"]


def _rows() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    ts = pl.datetime_range(START, START + timedelta(days=DAYS, hours=-1), "1h", eager=True)
    hours = np.arange(ts.len())
    kept = {
        "steady": np.ones(ts.len(), bool),
        "old": hours < 24,  # Insights only before every window and baseline
        "fresh": hours >= DAYS * 24 - 10,  # only inside its lookback window: a zero baseline
        "gappy": (hours // 24) % 2 == 0,  # alternate days
        "tiny": np.ones(ts.len(), bool),
    }
    frames = []
    for i, (adset, keep) in enumerate(kept.items()):
        n = int(keep.sum())
        spend = np.round(rng.uniform(0.0, 30.0, n), 2) * (rng.random(n) > 0.25)
        if adset == "tiny":  # one cent (the API's smallest amount) on some hours
            spend = np.where(rng.random(n) > 0.5, 0.01, 0.0)
        conversions = rng.uniform(0.0, 2.0, n)
        estimated = rng.random(n) > 0.4
        frames.append(
            adset_hours(
                rng, ts.filter(pl.Series(keep)), f"c{i % 2}", adset, spend, conversions, estimated
            )
        )
    return as_insights(frames)


def _matured(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(
        conversions=pl.coalesce("conversions_est", "conversions"),
        purchase_value=pl.coalesce("purchase_value_est", "purchase_value"),
    )


def reference_windows(rows: pl.DataFrame) -> pl.DataFrame:
    rows = _matured(rows)
    grid = pl.DataFrame({"as_of": AS_OFS}).join(
        pl.DataFrame({"window_hours": WINDOWS}), how="cross"
    )
    hit = grid.join(rows, how="cross").filter(
        pl.col("ts") >= pl.col("as_of") - pl.duration(hours=pl.col("window_hours")),
        pl.col("ts") < pl.col("as_of"),
    )
    early = pl.col("ts") < pl.col("as_of") - pl.duration(minutes=pl.col("window_hours") * 30)
    out = hit.group_by("adset_id", "as_of", "window_hours").agg(
        pl.col("campaign_id").max(),
        *[pl.col(c).sum() for c in SUMS],
        *[pl.col(c).filter(early).sum().alias(f"{c}_early") for c in SUMS],
        *[pl.col(c).filter(~early).sum().alias(f"{c}_late") for c in SUMS],
        hours_with_spend=(pl.col("spend") > 0).sum(),
    )
    return out.select([pl.col(c).cast(t) for c, t in WINDOW_METRICS.items()]).sort(
        "as_of", "window_hours", "adset_id"
    )


def reference_baselines(rows: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """``pairs``: adset_id, as_of, lookback_hours; a pair without rows in its baseline or
    window gives no row (as an inner join does)."""
    rows = _matured(rows)
    bounds = pairs.with_columns(
        baseline_end=pl.col("as_of") - pl.duration(hours=pl.col("lookback_hours")),
    ).with_columns(baseline_start=pl.col("baseline_end") - pl.duration(days=BASELINE_DAYS))
    hit = bounds.join(rows, on="adset_id").filter(
        pl.col("ts") >= pl.col("baseline_start"), pl.col("ts") < pl.col("as_of")
    )
    inside = pl.col("ts") < pl.col("baseline_end")
    offset = ((pl.col("baseline_end") - pl.col("ts")).dt.total_microseconds() - 1) // 86_400_000_000
    out = hit.group_by("adset_id", "as_of", "lookback_hours", "baseline_start", "baseline_end").agg(
        pl.col("campaign_id").max(),
        offset.filter(inside & (pl.col("spend") > 0)).unique().sort().alias("offsets"),
        *[pl.col(c).filter(inside).sum().alias(f"baseline_{c}") for c in SUMS],
    )
    spend, conv = pl.col("baseline_spend"), pl.col("baseline_conversions")
    out = out.with_columns(
        baseline_days_active=pl.col("offsets").list.len(),
        baseline_active_day_offsets=pl.col("offsets"),
        baseline_roas=pl.when(spend > 0).then(pl.col("baseline_purchase_value") / spend),
        baseline_cpa=pl.when((spend > 0) & (conv > 0))
        .then(spend / conv)
        .when(spend > 0)
        .then(float("inf")),
        baseline_ctr=pl.when(pl.col("baseline_impressions") > 0).then(
            100.0 * pl.col("baseline_clicks") / pl.col("baseline_impressions")
        ),
        baseline_frequency=pl.when(pl.col("baseline_reach") > 0).then(
            pl.col("baseline_impressions") / pl.col("baseline_reach")
        ),
    )
    return out.select([pl.col(c).cast(t) for c, t in BASELINES.items()]).sort("as_of", "adset_id")


def reference_daily(rows: pl.DataFrame, as_of: datetime, days: int) -> pl.DataFrame:
    rows = _matured(rows).filter(pl.col("ts") >= as_of - timedelta(days=days), pl.col("ts") < as_of)
    return (
        rows.group_by("adset_id", "date")
        .agg(pl.col("campaign_id").max(), *[pl.col(c).sum() for c in SUMS[:1] + SUMS[4:]])
        .select("adset_id", "campaign_id", "date", "spend", "conversions", "purchase_value")
        .sort("adset_id", "date")
    )


def _assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Same rows, keys, counts and day lists exactly; float sums to within DECIMAL(38,10)'s
    rounding of each row (far below a cent)."""
    assert got.columns == want.columns
    assert got.height == want.height, (got.height, want.height)
    for col in got.columns:
        a, b = got[col], want[col]
        if a.dtype == pl.Float64:
            both_inf = a.is_infinite() & b.is_infinite()
            close = ((a - b).abs() <= 1e-9 + 1e-12 * b.abs()) | both_inf
            assert (a.is_null() == b.is_null()).all(), col
            assert close.fill_null(True).all(), (col, got.filter(~close.fill_null(True)))
        else:
            assert a.equals(b), (col, a, b)


def test_windows_and_baselines_match_a_full_scan_reference(tmp_path):
    rows = _rows()
    con = warehouse(tmp_path / "warehouse.duckdb", rows)

    windows = window_metrics(con, AS_OFS, WINDOWS)
    _assert_same(windows, reference_windows(rows))
    assert "old" not in windows["adset_id"].to_list()

    # one lookback for every ad set: the reference lists every ad set in all of insights
    every = pl.DataFrame({"adset_id": rows["adset_id"].unique().sort()}).join(
        pl.DataFrame({"as_of": AS_OFS, "lookback_hours": [72, 72]}), how="cross"
    )
    scalar = entity_baselines(con, AS_OFS, baseline_days=BASELINE_DAYS, lookback_hours=72)
    _assert_same(scalar, reference_baselines(rows, every))
    tiny = scalar.filter(pl.col("adset_id") == "tiny")
    assert (tiny["baseline_days_active"] == BASELINE_DAYS).all(), tiny  # a cent is spend
    fresh = scalar.filter(pl.col("adset_id") == "fresh")
    assert fresh.height == 1 and fresh["baseline_spend"].item() == 0.0  # window only
    assert "old" not in scalar["adset_id"].to_list()

    # per-pair lookbacks, with pairs for ad sets without Insights in the scanned hours
    pairs = pl.DataFrame(
        {
            "adset_id": ["steady", "gappy", "fresh", "tiny", "old", "ghost", "gappy"],
            "as_of": [AS_OFS[1]] * 6 + [AS_OFS[0]],
            "lookback_hours": [96, 48, 168, 24, 24, 24, 30],
        },
        schema_overrides={"lookback_hours": pl.Int64},
    )
    listed = entity_baselines(con, AS_OFS, baseline_days=BASELINE_DAYS, lookback_hours=pairs)
    _assert_same(listed, reference_baselines(rows, pairs))
    assert sorted(listed["adset_id"].to_list()) == ["fresh", "gappy", "gappy", "steady", "tiny"]
    gappy = listed.filter(pl.col("adset_id") == "gappy", pl.col("as_of") == AS_OFS[1])
    assert 0 < gappy["baseline_days_active"].item() < BASELINE_DAYS

    got = daily_performance(con, AS_OFS[1], 10).sort("adset_id", "date")  # in no order
    _assert_same(got, reference_daily(rows, AS_OFS[1], 10))
