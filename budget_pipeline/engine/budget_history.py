"""Budgets as they really were on past days, from the changes made since (or until) now.

The account says its budgets *now*; the action log (or the simulated account's own record) says
every change the pipeline made, with the value before and after. Together they give the daily
budget and status of every entity at 00:00 of any past day — what the counterfactual starts
from and compares with. Changes made outside the pipeline (by hand in Ads Manager) are not in
the log: such an entity is taken to have had its present value (or the value before its first
logged change) all along.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from budget_pipeline import contracts

# Budget and status changes of entities, from the action log or the simulated account's own
# record: the value before and after each change (a kind the change did not touch is null).
CHANGES: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "at": pl.Datetime("us"),  # account-local; a change at 00:00 holds for that day
    "budget_before": pl.Int64(),
    "budget_after": pl.Int64(),
    "status_before": pl.Utf8(),
    "status_after": pl.Utf8(),
}

# Per budget holder and day: the daily budget and status in force at 00:00.
DAY_BUDGETS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "date": pl.Date(),
    "daily_budget": pl.Int64(),
    "status": pl.Utf8(),
}


def budgets_on(entities: pl.DataFrame, changes: pl.DataFrame, days: Sequence[date]) -> pl.DataFrame:
    """The daily budget and status of every entity at 00:00 of each day (:data:`DAY_BUDGETS`).

    ``entities``: AD_ENTITIES as they are now; ``changes``: :data:`CHANGES`. On a day, a
    value is the ``after`` of the entity's last change at or before 00:00, else the
    ``before`` of its first change after, else its value now.
    """
    changes = contracts.conform(changes, CHANGES).sort("at")
    grid = (
        entities.select("entity_id", "daily_budget", "status")
        .join(pl.DataFrame({"date": list(days)}, schema={"date": pl.Date()}), how="cross")
        .with_columns(at=pl.col("date").cast(pl.Datetime("us")))
        .sort("at")
    )
    for value in ("budget", "status"):
        kind = changes.filter(pl.col(f"{value}_after").is_not_null())
        before = kind.select("entity_id", "at", pl.col(f"{value}_after").alias("_last"))
        after = kind.select("entity_id", "at", pl.col(f"{value}_before").alias("_next"))
        # both sides are sorted by `at` (so within every entity): nothing to check
        grid = grid.join_asof(
            before, on="at", by="entity_id", strategy="backward", check_sortedness=False
        ).join_asof(
            after,
            on="at",
            by="entity_id",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        now = "daily_budget" if value == "budget" else "status"
        grid = grid.with_columns(pl.coalesce("_last", "_next", now).alias(now)).drop(
            "_last", "_next"
        )
    return contracts.conform(grid.sort("entity_id", "date"), DAY_BUDGETS)


def changes_from_start(initial: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """:data:`CHANGES` from a record of new values only (``entity_id, at, budget_after,
    status_after``), given every entity's ``daily_budget`` and ``status`` before the first."""
    ordered = changes.with_row_index("_order").sort("entity_id", "at", "_order")
    start = initial.select("entity_id", "daily_budget", "status")
    out = ordered.join(start, on="entity_id", how="left")
    for value, first in (("budget", "daily_budget"), ("status", "status")):
        after = pl.col(f"{value}_after")
        known = after.forward_fill().over("entity_id")
        out = out.with_columns(
            pl.when(after.is_not_null())
            .then(pl.coalesce(known.shift(1).over("entity_id"), pl.col(first)))
            .alias(f"{value}_before")
        )
    return contracts.conform(out.sort("at", "_order"), CHANGES)
