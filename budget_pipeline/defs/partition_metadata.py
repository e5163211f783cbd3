"""Per-partition metadata for the daily-partitioned assets.

A single-run backfill materializes every day of its range in one run; Dagster records one
materialization per partition, and without this each would carry the totals of the whole
window. Here each day gets its own totals (``context.add_asset_metadata(..., partition_key=)``),
so the partition view of one day shows that day.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

DAY_COLUMNS = ("rows", "adsets", "spend", "conversions", "purchase_value")


def daily_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """``date`` plus :data:`DAY_COLUMNS` per day of an Insights frame (contracts.INSIGHTS)."""
    return (
        frame.group_by("date")
        .agg(
            rows=pl.len(),
            adsets=pl.col("adset_id").n_unique(),
            spend=pl.col("spend").sum(),
            conversions=pl.col("conversions").sum(),
            purchase_value=pl.col("purchase_value").sum(),
        )
        .sort("date")
    )


def add_daily_metadata(context: dg.AssetExecutionContext, days: pl.DataFrame) -> int:
    """Attach each partition's own day (rows with ``date`` = its key) to its materialization;
    a day with no rows gets zeros. Returns how many partitions got metadata."""
    by_day = {str(row["date"]): row for row in days.iter_rows(named=True)}
    keys = context.partition_keys
    for key in keys:
        row = by_day.get(key, {})
        spend = float(row.get("spend") or 0.0)
        value = float(row.get("purchase_value") or 0.0)
        context.add_asset_metadata(
            {
                "day": key,
                "rows": int(row.get("rows") or 0),
                "adsets": int(row.get("adsets") or 0),
                "spend": round(spend, 2),
                "conversions": round(float(row.get("conversions") or 0.0), 2),
                "purchase_value": round(value, 2),
                "roas": round(value / spend, 3) if spend else 0.0,
            },
            partition_key=key,
        )
    return len(keys)
