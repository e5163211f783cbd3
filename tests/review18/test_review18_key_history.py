"""Review 18: the cost of the curves query grows with every id ever keyed, not with the ids
it returns.

``with_entity_ids`` reads the whole of ``entity_keys`` on every call (``select_entity_keys``)
and hands all of it to polars as the dictionary of both id columns. Keys are never removed
or reused, so an account's history of ad sets (paused, deleted, churned: each id keyed once
and kept) is read, checked and converted each time the curves are read — every decision
cycle, and once per replayed day in the counterfactual. Measured (best of 7, one process):
2,000 ad sets x 14 days, 8.6-9.1 ms with only their ids keyed, 17.8-18.2 ms with 200,000
ids of the past keyed too; at 10k ad sets x 56 days, 21 ms with 12,000 keyed ids and 46 ms
with 502,000, where the code before the keys read the same rows in 23-24 ms whatever the
history. The fix: read the ids of the keys the rows use only (the distinct keys of the two
columns, a semi-join on entity_keys) and renumber the codes densely into that dictionary.
"""

from __future__ import annotations

import time
from datetime import datetime

import duckdb
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


@pytest.mark.xfail(
    strict=True,
    reason="with_entity_ids reads and converts every keyed id ever, not those the rows use",
)
def test_ids_of_the_past_do_not_slow_the_curves_query():
    con = duckdb.connect()  # in memory: the cost measured is the read, not the disk
    ensure_schema(con)
    con.execute(
        "INSERT INTO insights BY NAME SELECT CAST(t AS DATE) AS date, "
        "CAST(hour(t) AS TINYINT) AS hour, t AS ts, 'c' || CAST(a // 5 AS VARCHAR) AS "
        "campaign_id, 'a' || CAST(a AS VARCHAR) AS adset_id, 1.5 AS spend, 100 AS impressions, "
        "50 AS reach, 3 AS clicks, 0.5 AS conversions, 20.0 AS purchase_value, t AS pulled_at, "
        "t AS reported_at FROM range(0, 2000) r(a), "
        "range(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-21', INTERVAL 1 HOUR) s(t)"
    )
    insights_rollup.refresh(con)
    rows = daily_performance(con, AS_OF, 14).height
    assert rows == 2000 * 14
    now = _best(con)
    keyed = con.execute("SELECT count(*) FROM entity_keys").fetchone()[0]
    con.execute(  # ad sets and campaigns of the past: keyed once, no hour in the window
        "INSERT INTO entity_keys SELECT 'gone-' || CAST(i AS VARCHAR), CAST(? + i AS INTEGER) "
        "FROM range(0, ?) t(i)",
        [keyed, PAST_IDS],
    )
    assert daily_performance(con, AS_OF, 14).height == rows  # the same rows, read as before
    with_history = _best(con)
    # the same rows: within twice the time (measured: 3.6 times, 7.3-7.8 ms to 26.5-27.7 ms)
    assert with_history < 2 * now, (now, with_history)
