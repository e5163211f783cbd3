"""Review 12: "the rollup can never be stale without the engine refusing".

``check_rollup`` compares the hourly row count of ``[lo, hi)``'s dates with the rollup's,
as one total first (the fast path) and per date only when the totals differ.

Findings (each failed until fixed in the commit after the review; the in-place case is
documented and its remedy, a rebuild of the rollup, is what its test checks):
- Drift that cancels out over the range (one hour gone on one date, one more on another: a
  hand repair that moves an hour across midnight does exactly that) passes the total and is
  read silently, though the docstring promises "on every local date".
- Values changed in place (a restatement fixed by hand, a currency correction) keep every
  count: the whole days come from the stale rollup, the cut dates from the new hours, and the
  decisions mix both without a word.
- The same through the schema migration: an earlier build (no rollup) restating re-pulled
  days keeps every count, so ``_build_insights_daily`` (which rebuilds only when the totals
  differ) leaves the stale days when this build opens the file.

Guards (pass): through the real Dagster ``insights`` asset, re-running a partition, a
back-fill of older days after newer ones and a failed write (duplicate hour) all leave
``insights_daily`` equal to a rollup built afresh from the hours.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb
import pytest
from dagster_helpers import ALL_KEYS, resources
from hourly_insights import START, random_hours, warehouse
from polars.testing import assert_frame_equal
from review12.oracle_helpers import old_window_metrics

from budget_pipeline import db, insights_rollup
from budget_pipeline.definitions import defs
from budget_pipeline.engine.insight_pieces import StaleRollupError
from budget_pipeline.engine.signals import window_metrics

AS_OF = START + timedelta(days=15)
WINDOWS = [24 * 10]


@pytest.fixture
def con(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(21, 20))
    yield con
    con.close()


def _stale_or_exact(con):
    """Either the engine refuses, or it reads what the hours say (the old hourly query)."""
    try:
        got = window_metrics(con, [AS_OF], WINDOWS)
    except StaleRollupError:
        return
    assert_frame_equal(got, old_window_metrics(con, [AS_OF], WINDOWS), check_exact=True)


def test_drift_that_cancels_out_over_the_range_is_refused(con):
    # a hand repair: one bad hour deleted on day 8, one missing hour added on day 12 (for a4,
    # which spends about one hour in fifty, at an hour it has no row); neither rolled up
    con.execute(
        "DELETE FROM insights WHERE adset_id = 'a0' AND ts = $ts",
        {"ts": START + timedelta(days=8, hours=10)},
    )
    added = con.execute(
        "SELECT min(ts) FROM range($lo, $hi, INTERVAL 1 HOUR) AS t(ts) WHERE ts NOT IN "
        "(SELECT ts FROM insights WHERE adset_id = 'a4')",
        {"lo": START + timedelta(days=12), "hi": START + timedelta(days=13)},
    ).fetchone()[0]
    con.execute(
        "INSERT INTO insights BY NAME SELECT * REPLACE ('a4' AS adset_id, $ts AS ts, "
        "CAST($ts AS DATE) AS date, CAST(hour($ts) AS TINYINT) AS hour) "
        "FROM insights WHERE adset_id = 'a0' LIMIT 1",
        {"ts": added},
    )
    hourly, rolled = con.execute(
        "SELECT (SELECT count(*) FROM insights), (SELECT sum(hours) FROM insights_daily)"
    ).fetchone()
    per_date = con.execute(
        "SELECT count(*) FROM (SELECT date, count(*) AS n FROM insights GROUP BY date) h "
        "FULL JOIN (SELECT date, sum(hours) AS n FROM insights_daily GROUP BY date) d "
        "USING (date) WHERE h.n IS DISTINCT FROM d.n"
    ).fetchone()[0]
    assert hourly == rolled and per_date == 2  # the shape of the case: equal totals, 2 dates off
    with pytest.raises(StaleRollupError):
        window_metrics(con, [AS_OF], WINDOWS)


def test_values_changed_in_place_are_read_from_the_hours_once_rolled_up_again(con):
    # A count cannot see this (documented: check_rollup, README, `budget-pipeline rollup`);
    # the remedy for whoever edits insights by hand is to rebuild the rollup.
    day = (START + timedelta(days=10)).date()
    con.execute("UPDATE insights SET spend = spend * 2 WHERE date = $d", {"d": day})
    with db.transaction(con):
        insights_rollup.refresh(con)
    _stale_or_exact(con)
    assert_frame_equal(
        window_metrics(con, [AS_OF], WINDOWS),
        old_window_metrics(con, [AS_OF], WINDOWS),
        check_exact=True,
    )


# --- the maintenance sequences through the real insights asset (guards) ----------------------


def _rollup_is_fresh(db_path) -> None:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        diff = con.execute(
            """
            WITH fresh AS (
                SELECT date, adset_id, max(campaign_id) AS campaign_id, count(*) AS hours,
                    coalesce(bit_or(CASE WHEN spend > 0 THEN 1 << CAST(hour AS INTEGER) END), 0) AS spent_hours,
                    sum(CAST(spend AS DECIMAL(38, 10))) AS spend,
                    sum(CAST(impressions AS HUGEINT)) AS impressions,
                    sum(CAST(coalesce(purchase_value_est, purchase_value)
                        AS DECIMAL(38, 10))) AS purchase_value
                FROM insights GROUP BY ALL
            ),
            kept AS (
                SELECT date, adset_id, campaign_id, hours, spent_hours, spend, impressions,
                    purchase_value FROM insights_daily
            )
            SELECT (SELECT count(*) FROM (FROM fresh EXCEPT ALL FROM kept)),
                (SELECT count(*) FROM (FROM kept EXCEPT ALL FROM fresh)),
                (SELECT count(*) FROM kept)
            """
        ).fetchone()
    finally:
        con.close()
    assert diff[:2] == (0, 0) and diff[2] > 0, diff


def _insights(db_path, key: str, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*defs.assets],
        selection=["ad_entities", "raw_insights", "insights"],
        partition_key=key,
        resources=resources(db_path),
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.slow
def test_the_insights_asset_keeps_the_rollup_through_reruns_backfills_and_failures(tmp_path):
    db_path, instance = tmp_path / "w.duckdb", dg.DagsterInstance.ephemeral()
    for key in (ALL_KEYS[-1], ALL_KEYS[-8], ALL_KEYS[-1], ALL_KEYS[-2]):  # newest, older, again
        assert _insights(db_path, key, instance).success
        _rollup_is_fresh(db_path)
    con = duckdb.connect(str(db_path))
    before = con.sql("SELECT * FROM insights_daily ORDER BY ALL").pl()
    con.execute(  # a duplicate hour in the newest partition's pull
        "INSERT INTO raw_insights SELECT * FROM raw_insights "
        "WHERE date = (SELECT max(date) FROM raw_insights) LIMIT 1"
    )
    con.close()
    failed = dg.materialize(
        [*defs.assets],
        selection=["insights"],
        partition_key=ALL_KEYS[-1],
        resources=resources(db_path),
        instance=instance,
        raise_on_error=False,
    )
    assert not failed.success
    assert "DuplicateInsightsError" in str(failed.get_step_failure_events()[0].event_specific_data)
    con = duckdb.connect(str(db_path), read_only=True)
    after = con.sql("SELECT * FROM insights_daily ORDER BY ALL").pl()
    con.close()
    assert_frame_equal(after, before)  # rolled back with the hours
    _rollup_is_fresh(db_path)


def test_hours_restated_by_an_earlier_version_are_rolled_up_when_this_one_opens_the_file(
    tmp_path,
):
    # an earlier build (before the rollup) ran against this warehouse, e.g. a daemon on the
    # old code location next to a new CLI, or a downgrade and upgrade: its merge restated the
    # re-pulled days (late conversions: the same hours, new values) without a rollup
    from budget_pipeline.defs.resources import Warehouse

    path = tmp_path / "w.duckdb"
    warehouse(path, random_hours(23, 20)).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE warehouse_info SET value = 'an-earlier-build' WHERE key = 'schema_version'")
    con.execute(
        "UPDATE insights SET conversions_est = coalesce(conversions_est, conversions) * 1.25, "
        "purchase_value_est = coalesce(purchase_value_est, purchase_value) * 1.25 "
        "WHERE date >= $d",
        {"d": (START + timedelta(days=12)).date()},
    )
    con.close()
    with Warehouse(database=str(path)).connect() as con:  # this build: the schema migration
        _stale_or_exact(con)
