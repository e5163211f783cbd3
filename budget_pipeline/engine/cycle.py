"""The decision cycle's clock: it is driven by the data, not by the wall clock."""

from __future__ import annotations

from datetime import datetime

import duckdb

from budget_pipeline import db


class NoInsightsError(RuntimeError):
    """The warehouse holds no Insights yet: materialize the insights partitions first."""


def cycle_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The end of the newest hour in ``insights`` (naive, account-local)."""
    as_of = db.scalar(con, "select_latest_insight_hour")
    if as_of is None:
        raise NoInsightsError(
            "the insights table is empty: materialize raw_insights and insights "
            "(e.g. `budget-pipeline run`) before the decision assets"
        )
    return as_of
