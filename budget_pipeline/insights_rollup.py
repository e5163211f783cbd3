"""Keep ``insights_daily`` (the per-day rollup the decisions read) in step with ``insights``.

The ``insights`` asset rolls up the dates it rewrites in the same transaction; a warehouse
made before the rollup existed gets it built once by the schema migration; anything else that
writes hourly rows (a test fixture, a repair by hand) calls :func:`refresh` after.
"""

from __future__ import annotations

from datetime import date

import duckdb

from budget_pipeline import db


def refresh(
    con: duckdb.DuckDBPyConnection, start: date | None = None, end: date | None = None
) -> None:
    """Roll up the local dates ``start``..``end`` (inclusive; every date in ``insights`` when
    left out) again. Run it inside the transaction that wrote those hours."""
    if start is None or end is None:
        first, last = db.one(con, "select_insights_date_range") or (None, None)
        if first is None:
            db.run(con, "delete_insights_daily_all")
            return
        start, end = start or first, end or last
    params = {"start": start, "end": end}
    db.run(con, "delete_insights_daily_window", params)
    db.run(con, "insert_insights_daily_window", params)
