"""The baselines as a marketer reads them: each ad set by name, its own usual numbers."""

from __future__ import annotations

import polars as pl

from budget_pipeline.defs.display import major_money_columns, with_names
from budget_pipeline.engine.report import markdown_table


def baselines_table(frame: pl.DataFrame, labels: pl.DataFrame, currency: str) -> str:
    """Markdown: per ad set its baseline window and its usual spend, value, ROAS, CPA, CTR and
    frequency (money in major units with the currency)."""
    shown = frame.select(
        pl.col("adset_id").alias("entity_id"),
        pl.format(
            "{} .. {}", pl.col("baseline_start").dt.date(), pl.col("baseline_end").dt.date()
        ).alias("window"),
        pl.col("baseline_days_active").alias("days"),
        pl.col("baseline_spend").alias("spend"),
        pl.col("baseline_purchase_value").alias("value"),
        pl.col("baseline_roas").round(2).alias("roas"),
        pl.col("baseline_cpa").alias("cpa"),
        pl.format("{} %", pl.col("baseline_ctr").round(2)).alias("ctr"),
        pl.col("baseline_frequency").round(2).alias("frequency"),
    )
    table = major_money_columns(
        with_names(shown, labels).sort("campaign", "name"), ["spend", "value", "cpa"], currency
    )
    return markdown_table(table, max_rows=60)
