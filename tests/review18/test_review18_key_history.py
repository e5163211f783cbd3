"""Review 18: the cost of the curves query must not grow with every id ever keyed.

Keys are never removed or reused, so an account's history of ad sets (paused, deleted,
churned: each id keyed once and kept) stays in ``entity_keys``. The first ``with_entity_ids``
read all of it on every call, and the curves are read every decision cycle and once per
replayed day in the counterfactual. Measured then (best of 7, one process): 2,000 ad sets x
14 days, 7.3-7.8 ms with only their ids keyed, 26.5-27.7 ms with 500,000 ids of the past keyed
too. Now only the ids of the keys the rows use are read: a range when they are dense, a
semi-join on the few otherwise; the past keyed before the current ids (low keys, the usual
case) or after them.
"""

from __future__ import annotations

import time
from datetime import datetime

import duckdb
import polars as pl
import pytest

from budget_pipeline import insights_rollup
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.warehouse_schema import ensure_schema

PAST_IDS = 500_000
AS_OF = datetime(2024, 1, 21)


def _best(con: duckdb.DuckDBPyConnection, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        daily_performance(con, AS_OF, 14)
        times.append(time.perf_counter() - started)
    return min(times)


def _past(con: duckdb.DuckDBPyConnection, first_key: int) -> None:
    con.execute(  # ad sets and campaigns of the past: keyed once, no hour in the window
        "INSERT INTO entity_keys SELECT 'gone-' || CAST(i AS VARCHAR), CAST(? + i AS INTEGER) "
        "FROM range(0, ?) t(i)",
        [first_key, PAST_IDS],
    ).fetchall()


def _account(past: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()  # in memory: the cost measured is the read, not the disk
    ensure_schema(con)
    if past == "before":  # the past keyed first: the current ids' keys come after it
        _past(con, 0)
    con.execute(
        "INSERT INTO insights BY NAME SELECT CAST(t AS DATE) AS date, "
        "CAST(hour(t) AS TINYINT) AS hour, t AS ts, 'c' || CAST(a // 5 AS VARCHAR) AS "
        "campaign_id, 'a' || CAST(a AS VARCHAR) AS adset_id, 1.5 AS spend, 100 AS impressions, "
        "50 AS reach, 3 AS clicks, 0.5 AS conversions, 20.0 AS purchase_value, t AS pulled_at, "
        "t AS reported_at FROM range(0, 2000) r(a), "
        "range(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-21', INTERVAL 1 HOUR) s(t)"
    ).fetchall()
    insights_rollup.refresh(con)
    if past == "after":
        _past(con, con.execute("SELECT count(*) FROM entity_keys").fetchone()[0])
    return con


@pytest.mark.parametrize("past", ["before", "after"])
def test_ids_of_the_past_do_not_slow_the_curves_query(past):
    plain, with_past = _account("none"), _account(past)
    want = daily_performance(plain, AS_OF, 14)
    got = daily_performance(with_past, AS_OF, 14)
    assert want.height == 2000 * 14
    as_strings = [pl.col("adset_id", "campaign_id").cast(pl.String)]
    rows = ["adset_id", "date"]  # in no particular order
    assert got.with_columns(as_strings).sort(rows).equals(want.with_columns(as_strings).sort(rows))
    # within twice the time (before the fix: 3.6 times, 7.3-7.8 ms to 26.5-27.7 ms)
    now, with_history = _best(plain), _best(with_past)
    assert with_history < 2 * now, (now, with_history)
