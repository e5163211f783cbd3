"""The metadata the decision assets attach: what a marketer reads and what the UI plots
(``rebalance_plan``'s in :mod:`~budget_pipeline.defs.decisions.plan_metadata`).

The asset bodies call these with the frames they already hold. Tables name every entity next
to its id and show money in major units with the currency; numbers a marketer follows over
time are plain floats keyed ``<pool>/<measure>`` (``retargeting/budget``), so the asset page's
"Plots" tab draws them over materializations. The reason texts come from the engine as they
are; this module only puts them in readable tables.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from budget_pipeline.defs.display import (
    money_major,
    ratio,
    with_names,
)
from budget_pipeline.engine.report import markdown_table

BUDGET_ACTIONS = ("increase", "decrease", "pause")
MAX_TABLE_ROWS = 60


# --- composite_scores -----------------------------------------------------------------------


def score_metadata(scores: pl.DataFrame, labels: pl.DataFrame, currency: str) -> dict:
    """Per pool counts and mean score (a float per pool to plot), and every score with the
    numbers behind it: ROAS and CPA against the entity's own usual, spend of its window."""
    latest = scores.filter(pl.col("as_of") == pl.col("as_of").max())
    by_pool = (
        latest.group_by("pool")
        .agg(
            entities=pl.len(),
            scored=(pl.col("status") == "scored").sum(),
            mean_score=pl.col("score").mean().round(3),
            min_score=pl.col("score").min().round(3),
            max_score=pl.col("score").max().round(3),
        )
        .sort("pool")
    )
    # the table shows the first MAX_TABLE_ROWS by score; every score stays in composite_scores
    rows = latest.sort("score", descending=True, nulls_last=True).head(MAX_TABLE_ROWS)
    table = with_names(rows.select("entity_id", "pool", "status", "score"), labels).with_columns(
        pl.col("score").round(3),
        roas=pl.Series(
            [
                f"{ratio(r['roas'])} (usual {ratio(r['baseline_roas'])})"
                for r in rows.iter_rows(named=True)
            ],
            dtype=pl.Utf8,
        ),
        cpa=pl.Series([_cpa(r, currency) for r in rows.iter_rows(named=True)], dtype=pl.Utf8),
        spend=pl.Series([money_major(v, currency) for v in rows["spend"]], dtype=pl.Utf8),
        reason=rows["reason"],
    )
    return {
        "as_of": str(latest["as_of"].max()) if latest.height else "",
        "entities": latest.height,
        "insufficient_data": int((latest["status"] == "insufficient_data").sum()),
        "by_pool": dg.MetadataValue.md(markdown_table(by_pool)),
        **{
            f"{row['pool']}/mean_score": float(row["mean_score"] or 0.0)
            for row in by_pool.iter_rows(named=True)
            if row["pool"] is not None
        },
        "scores_and_why": dg.MetadataValue.md(
            markdown_table(table, max_rows=MAX_TABLE_ROWS)
            + not_shown(latest.height - table.height, "composite_scores")
        ),
    }


def not_shown(count: int, table: str) -> str:
    return (
        f"\n\n_{count:,} more rows not shown: all are in DuckDB table {table}_" if count > 0 else ""
    )


def _cpa(row: dict, currency: str) -> str:
    usual = money_major(row["baseline_cpa"], currency) or "n/a"
    now = money_major(row["cpa"], currency)
    if not now:
        return f"no conversions (usual {usual})" if row["spend"] else ""
    return f"{now} (usual {usual})"


# --- trigger_states -------------------------------------------------------------------------


def trigger_metadata(
    actions: pl.DataFrame,
    states: pl.DataFrame,
    labels: pl.DataFrame,
    pools: pl.DataFrame,
    *,
    new_intervals: int,
    as_of: object,
) -> dict:
    """What fired at the newest interval (with names), the open streaks, and per pool the
    number of fired budget actions (``<pool>/triggers_fired``)."""
    fired = actions.group_by("action").len().rename({"len": "count"}).sort("action")
    shown = with_names(actions.drop("as_of"), labels).with_columns(pl.col("score").round(3))
    streaks = with_names(
        states.filter(pl.col("streak") > 0).sort("streak", descending=True), labels, campaign=False
    )
    per_pool = (
        actions.filter(pl.col("action").is_in(BUDGET_ACTIONS))
        .join(pools, on="entity_id", how="left")
        .group_by("pool")
        .len()
    )
    counts = dict(per_pool.iter_rows())
    return {
        "new_intervals": new_intervals,
        "as_of": str(as_of),
        "fired": dg.MetadataValue.md(markdown_table(fired)),
        "actions": dg.MetadataValue.md(markdown_table(shown)),
        "open_streaks": dg.MetadataValue.md(markdown_table(streaks, max_rows=30)),
        **{
            f"{pool}/triggers_fired": int(counts.get(pool, 0))
            for pool in sorted(p for p in pools["pool"].unique().to_list() if p is not None)
        },
    }
