"""Reading the Insights as pieces: whole days from the ``insights_daily`` rollup, hours only
on the dates a range cuts (``sql/create_macro_insight_pieces.sql``).

A decision reads 30 to 56 days of hourly rows per ad set: 14 million rows at 10,000 ad sets.
Rolled up per day they are 24 times fewer, and because the rollup sums exactly (DECIMAL and
HUGEINT) a range summed over day pieces plus the hours of its cut dates equals the hourly sum
to the bit. The rollup also keeps each day's morning (hours 0-11), so a date cut only at noon
(:func:`noon_dates`) is read as two halves, not 24 hours. The queries pass :func:`edge_dates`
of every bound they use; before they read, :func:`check_rollup` makes sure the rollup holds
every hourly row of those days (a write that bypassed the ``insights`` merge would otherwise
be read as missing days). It counts rows: a value changed in place by hand is not seen, so
whoever edits ``insights`` directly rebuilds the rollup after (``budget-pipeline rollup``,
or :func:`budget_pipeline.insights_rollup.refresh`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import duckdb

from budget_pipeline import db


class StaleRollupError(RuntimeError):
    """``insights_daily`` does not hold the hourly rows of ``insights`` for some dates."""


def edge_dates(bounds: Iterable[datetime | None], *, halves: bool = False) -> list[date]:
    """The distinct dates of ``bounds`` that are not midnights, sorted: the days a range with
    those bounds covers only in part, read hour by hour. With ``halves`` a noon does not make
    an edge either (the query reads those days as halves: :func:`noon_dates`)."""
    whole = {time(0), time(12)} if halves else {time(0)}
    return sorted({b.date() for b in bounds if b is not None and b.time() not in whole})


def noon_dates(bounds: Iterable[datetime | None]) -> list[date]:
    """The dates cut at noon and nowhere else but at midnight, sorted: read as a morning and
    an afternoon from the rollup instead of hour by hour (the middle of a 72- or 168-hour
    window that ends at midnight)."""
    bounds = [b for b in bounds if b is not None]
    edges = set(edge_dates(bounds, halves=True))
    return sorted({b.date() for b in bounds if b.time() == time(12)} - edges)


def check_rollup(con: duckdb.DuckDBPyConnection, lo: datetime | None, hi: datetime | None) -> None:
    """Raise :class:`StaleRollupError` unless ``insights_daily`` counts as many hourly rows as
    ``insights`` on every local date of ``[lo, hi)`` (checked as two sums: the rows, and the
    rows weighted by their date; the dates that differ are then named)."""
    if lo is None or hi is None or hi <= lo:
        return
    params = {"start": lo.date(), "end": (hi - timedelta(microseconds=1)).date()}
    hourly, rolled, hourly_days, rolled_days = db.one(
        con, "select_insights_daily_totals", params
    ) or (0, 0, 0, 0)
    if hourly == rolled and hourly_days == rolled_days:  # a few milliseconds at 10k ad sets
        return
    drift = db.read(con, "select_insights_daily_drift", params)
    if drift.height:
        days = ", ".join(
            f"{r['date']} ({r['hourly_rows']} hourly rows, {r['rollup_rows']} rolled up)"
            for r in drift.iter_rows(named=True)
        )
        more = drift["dates_off"][0] - drift.height
        raise StaleRollupError(
            f"insights_daily is out of step with insights on {days}"
            + (f" and {more} more date(s)" if more > 0 else "")
            + ": hours were written to insights without the insights merge; rebuild the "
            "rollup with `budget-pipeline rollup` (or re-materialize insights for those days)"
        )
