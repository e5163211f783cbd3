"""Keep ``insights_daily`` (the per-day rollup the decisions read) in step with ``insights``.

The ``insights`` asset rolls up the dates it rewrites in the same transaction; a warehouse
made before the rollup existed gets it built once by the schema migration; anything else that
writes hourly rows (a test fixture, a repair by hand) calls :func:`refresh` after, or runs
``budget-pipeline rollup`` (:func:`rebuild`).
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

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
    db.run(con, "insert_entity_keys_window", params)  # new ids' keys, which the rollup joins
    db.run(con, "insert_insights_daily_window", params)
    mark_written(con)


# warehouse_info key of a token that changes whenever hours are written (see mark_written)
INSIGHTS_VERSION = "insights_version"


def mark_written(con: duckdb.DuckDBPyConnection) -> None:
    """Note that hours of ``insights`` were (re)written: a new token under INSIGHTS_VERSION.
    What was computed from the Insights and recorded with the token it read (the stored
    baselines) is current only while the token is unchanged: a re-pull restating late
    conversions or a repair by hand changes the values but not the rows' count. A warehouse
    without warehouse_info (a bare test table) records nothing, and so reuses nothing."""
    if _has_info(con):  # asked, not tried: an error would abort the caller's transaction
        db.run(con, "upsert_warehouse_info", {"key": INSIGHTS_VERSION, "value": uuid.uuid4().hex})


def written_version(con: duckdb.DuckDBPyConnection) -> str:
    """The token :func:`mark_written` left ("" if none)."""
    if not _has_info(con):
        return ""
    return str(db.scalar(con, "select_warehouse_info", {"key": INSIGHTS_VERSION}) or "")


def _has_info(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(db.scalar(con, "select_warehouse_info_exists"))


def rebuild(db_path: Path) -> tuple[int, int]:
    """Roll up every date of the warehouse at ``db_path`` again, in one transaction (the file
    brought up to date first). Returns the days and hourly rows rolled up."""
    from budget_pipeline.warehouse_schema import ensure_schema

    con = duckdb.connect(str(db_path))
    try:
        if not ensure_schema(con):  # a new version rebuilds it already
            with db.transaction(con):
                refresh(con)
        days, rows = db.one(con, "select_insights_daily_size") or (0, 0)
        return int(days), int(rows)
    finally:
        con.close()
