"""Three guards as they were before issue 11's rework (commit e29447a, verbatim but for the
validation and the sort, which the reworked ``guards`` still does: ``git show
e29447a:budget_pipeline/engine/guards.py``, ``check_min_interval``, ``check_min_budget`` and
``check_in_learning``): each joins the whole plan. The oracle of the reworked checks (only the
rows that can break the rule joined, lazily), which must find the same violations on any
plan. A change of a rule changes both: retire this file then."""

# ruff: noqa
from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from budget_pipeline import contracts


def _edited() -> pl.Expr:
    return (pl.col("new_budget") != pl.col("old_budget")) | pl.col("pause")


def check_min_interval(
    plan: pl.DataFrame,
    last_changes: pl.DataFrame,
    as_of: datetime,
    hours: float,
    max_per_hour: int,
) -> pl.DataFrame:
    """Edited entities changed less than ``hours`` before ``as_of`` (or later), or already edited
    ``max_per_hour`` times in the last hour (contracts.LAST_CHANGES)."""
    changes = (
        contracts.conform(last_changes, contracts.LAST_CHANGES)
        .group_by("entity_id")
        .agg(pl.col("changed_at").max(), pl.col("changes_last_hour").max())
    )
    since = as_of - timedelta(hours=hours)
    too_soon = (pl.col("changed_at") > since).fill_null(False)
    too_many = (pl.col("changes_last_hour") >= max_per_hour).fill_null(False)
    return (
        plan.filter(_edited())
        .join(changes, on="entity_id", how="inner")
        .filter(too_soon | too_many)
        .select(
            "entity_id",
            "old_budget",
            "new_budget",
            "pause",
            "changed_at",
            "changes_last_hour",
            pl.concat_str(
                [
                    pl.col("entity_id"),
                    pl.lit(" is edited"),
                    pl.when(too_soon).then(
                        pl.concat_str(
                            [
                                pl.lit(" though last changed at "),
                                pl.col("changed_at").dt.to_string("%Y-%m-%d %H:%M"),
                                pl.lit(f", less than {hours:g} h before {as_of:%Y-%m-%d %H:%M}"),
                            ]
                        )
                    ),
                    pl.when(too_many).then(
                        pl.concat_str(
                            [
                                pl.lit(" after "),
                                pl.col("changes_last_hour").cast(pl.Utf8),
                                pl.lit(f" changes in the last hour (max {max_per_hour})"),
                            ]
                        )
                    ),
                ],
                ignore_nulls=True,
            ).alias("detail"),
        )
    )


def check_min_budget(
    plan: pl.DataFrame, min_budgets: pl.DataFrame | int, *, default: int = 0
) -> pl.DataFrame:
    """Entities cut below their minimum budget (``entity_id, min_budget`` rows, or one integer
    for every entity; entities missing from the frame use ``default``). A budget that was
    already below the minimum and is not cut further is not a violation."""
    if isinstance(min_budgets, pl.DataFrame):
        mins = (
            min_budgets.select(
                pl.col("entity_id").cast(pl.Utf8), pl.col("min_budget").cast(pl.Int64, strict=True)
            )
            .group_by("entity_id")
            .agg(pl.col("min_budget").max())
        )
        frame = plan.join(mins, on="entity_id", how="left").with_columns(
            pl.col("min_budget").fill_null(default)
        )
    else:
        frame = plan.with_columns(pl.lit(int(min_budgets), dtype=pl.Int64).alias("min_budget"))
    return frame.filter(
        (pl.col("new_budget") < pl.col("old_budget"))
        & (pl.col("new_budget") < pl.col("min_budget"))
    ).select(
        "entity_id",
        "old_budget",
        "new_budget",
        "min_budget",
        pl.format(
            "{} is cut from {} to {} (minor units), below its minimum budget {}",
            "entity_id",
            "old_budget",
            "new_budget",
            "min_budget",
        ).alias("detail"),
    )


def check_in_learning(plan: pl.DataFrame, in_learning: pl.DataFrame) -> pl.DataFrame:
    """Edited entities still in Meta's learning phase (``entity_id, in_learning`` rows)."""
    learning = (
        in_learning.select(
            pl.col("entity_id").cast(pl.Utf8), pl.col("in_learning").cast(pl.Boolean)
        )
        .filter(pl.col("in_learning").fill_null(False))
        .select("entity_id")
        .unique()
    )
    return (
        plan.filter(_edited())
        .join(learning, on="entity_id", how="inner")
        .select(
            "entity_id",
            "old_budget",
            "new_budget",
            "pause",
            pl.format("{} is still learning but the plan edits it", "entity_id").alias("detail"),
        )
    )
