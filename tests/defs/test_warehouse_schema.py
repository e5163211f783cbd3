"""The warehouse's tables: brought up to date once per file, not on every connection; insights
without a primary key, and still never two rows for one ad set and hour (issue 11)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import duckdb
import pytest
from dagster_helpers import ALL_KEYS, resources, run_cycle

from budget_pipeline import warehouse_schema
from budget_pipeline.definitions import defs
from budget_pipeline.defs.resources import Warehouse

OLD_INSIGHTS = """
CREATE TABLE insights (
    date DATE NOT NULL, hour TINYINT NOT NULL, ts TIMESTAMP NOT NULL,
    campaign_id VARCHAR NOT NULL, adset_id VARCHAR NOT NULL, spend DOUBLE NOT NULL,
    impressions BIGINT NOT NULL, reach BIGINT NOT NULL, clicks BIGINT NOT NULL,
    conversions DOUBLE NOT NULL, purchase_value DOUBLE NOT NULL, pulled_at TIMESTAMP NOT NULL,
    reported_at TIMESTAMP, conversions_est DOUBLE, purchase_value_est DOUBLE,
    PRIMARY KEY (adset_id, date, hour)
)
"""


def _count(db_path, sql: str):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()[0][0]
    finally:
        con.close()


def test_the_ddl_runs_once_per_file_and_again_only_when_it_changes(tmp_path, monkeypatch):
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    ran = []
    real = warehouse_schema.ensure_schema
    monkeypatch.setattr(
        "budget_pipeline.defs.resources.ensure_schema", lambda con: ran.append(real(con))
    )
    for _ in range(3):
        with warehouse.connect() as con:
            con.execute("SELECT count(*) FROM insights").fetchall()
    assert ran == [True, False, False]
    # new DDL in a later version (another hash): brought up to date once more
    monkeypatch.setattr(warehouse_schema, "schema_version", lambda: "a-later-version")
    for _ in range(2):
        with warehouse.connect():
            pass
    assert ran == [True, False, False, True, False]


def test_a_warehouse_with_the_old_primary_key_is_rebuilt_without_it_keeping_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(OLD_INSIGHTS)
    con.execute(
        "INSERT INTO insights VALUES ('2026-10-01', 3, '2026-10-01 03:00', '1', '2', 1.5, 100, "
        "90, 3, 1, 40.0, '2026-10-02', '2026-10-02', 1.2, 48.0)"
    )
    con.close()
    with Warehouse(database=str(path)).connect() as con:
        constraints = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'insights' "
            "AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()[0][0]
        rows = con.execute("SELECT adset_id, hour, purchase_value_est FROM insights").fetchall()
        # made before the per-day rollup: built from its hours (the macro reads the new table)
        rolled = con.execute(
            "SELECT date, adset_id, hours, spent_hours, purchase_value FROM insights_daily"
        ).fetchall()
        pieces = con.execute(
            "SELECT adset_id, CAST(spend AS DOUBLE) FROM insight_pieces("
            "TIMESTAMP '2026-10-01', TIMESTAMP '2026-10-02', []::DATE[], []::DATE[])"
        ).fetchall()
    assert constraints == 0
    assert rows == [("2", 3, 48.0)]
    assert rolled == [(date(2026, 10, 1), "2", 1, 1 << 3, Decimal("48.0000000000"))]
    assert pieces == [("2", 1.5)]


def test_a_rollup_in_an_earlier_shape_is_made_afresh_with_the_halves(tmp_path):
    path = tmp_path / "earlier.duckdb"
    with Warehouse(database=str(path)).connect() as con:
        con.execute(
            "INSERT INTO insights VALUES ('2026-10-01', 3, '2026-10-01 03:00', '1', '2', 1.5, "
            "100, 90, 3, 1, 40.0, '2026-10-02', '2026-10-02', 1.2, 48.0), ('2026-10-01', 15, "
            "'2026-10-01 15:00', '1', '2', 2.25, 50, 40, 2, 0, 0.0, '2026-10-02', '2026-10-02', "
            "NULL, NULL)"
        )
        # the rollup as the previous version made it: no morning sums, and stale
        con.execute("DROP TABLE insights_daily")
        con.execute(
            "CREATE TABLE insights_daily AS SELECT DATE '2026-10-01' AS date, '2' AS adset_id, "
            "'1' AS campaign_id, 1 AS hours, 8 AS spent_hours, 1.5::DECIMAL(38, 10) AS spend, "
            "100::HUGEINT AS impressions, 90::HUGEINT AS reach, 3::HUGEINT AS clicks, "
            "1.2::DECIMAL(38, 10) AS conversions, 48::DECIMAL(38, 10) AS purchase_value"
        )
        con.execute(
            "UPDATE warehouse_info SET value = 'an-earlier-version' WHERE key = 'schema_version'"
        )
    with Warehouse(database=str(path)).connect() as con:
        rolled = con.execute(
            "SELECT hours, hours_am, spend, spend_am, impressions_am, purchase_value_am "
            "FROM insights_daily"
        ).fetchall()
        halves = con.execute(
            "SELECT piece_start, CAST(spend AS DOUBLE), impressions FROM insight_pieces("
            "TIMESTAMP '2026-10-01', TIMESTAMP '2026-10-02', []::DATE[], [DATE '2026-10-01']) "
            "ORDER BY 1"
        ).fetchall()
    assert rolled == [(2, 1, Decimal("3.75"), Decimal("1.5"), 100, Decimal("48"))]
    assert [(str(ts), spend, n) for ts, spend, n in halves] == [
        ("2026-10-01 00:00:00", 1.5, 100),
        ("2026-10-01 12:00:00", 2.25, 50),
    ]


@pytest.mark.slow
def test_a_duplicate_hour_rolls_the_whole_insights_write_back(tmp_path):
    db_path = tmp_path / "w.duckdb"
    day = ALL_KEYS[-1]
    run_cycle(dg.DagsterInstance.ephemeral(), db_path, [day])
    before = _count(db_path, "SELECT count(*) FROM insights")
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO raw_insights SELECT * FROM raw_insights LIMIT 1")
    con.close()
    result = dg.materialize(
        [*defs.assets],
        selection=["insights"],
        partition_key=day,
        resources=resources(db_path),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "DuplicateInsightsError" in str(failure.event_specific_data.error)
    assert "repeat an (adset_id, date, hour)" in str(failure.event_specific_data.error)
    assert _count(db_path, "SELECT count(*) FROM insights") == before  # nothing written
    dupes = "SELECT count(*) - count(DISTINCT (adset_id, date, hour)) FROM insights"
    assert _count(db_path, dupes) == 0
