"""The warehouse queries the planner and the executor read the ledger through, on a real
DuckDB file: what counts as a recent change (the min-interval guard) and which plans are
unfinished (their pools are held)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from budget_pipeline import db
from budget_pipeline.defs.resources import Warehouse

AS_OF = datetime(2026, 10, 31, 12, 0)


def _ledger(con, plan_id, entity_id, state, minutes_ago=10):
    con.execute(
        "INSERT INTO execution_ledger VALUES (?, ?, 'budget', ?, 1, ?, ?)",
        [plan_id, entity_id, state, AS_OF, AS_OF - timedelta(minutes=minutes_ago)],
    )


def _log(con, plan_id, entity_id, status, minutes_ago=10):
    con.execute(
        "INSERT INTO action_log VALUES (gen_random_uuid()::VARCHAR, ?, 'run', ?, 'adset', "
        "'testing', 'live', 'budget', 100, 200, 'ACTIVE', 'ACTIVE', ?, 'm', ?, ?)",
        [plan_id, entity_id, status, AS_OF - timedelta(minutes=minutes_ago), AS_OF],
    )


def _plan_row(con, plan_id, entity_id, pool="testing"):
    con.execute(
        "INSERT INTO rebalance_plans VALUES (?, ?, 'adset', 'c', ?, 1, 100, 200, 100, 200, "
        "false, 'increase', NULL, NULL, 'r', ?, ?)",
        [plan_id, entity_id, pool, AS_OF, AS_OF],
    )


@pytest.fixture
def con(tmp_path):
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect() as con:
        yield con


def _changes(con, plan_id=None) -> dict[str, int]:
    frame = db.read(con, "select_last_changes", {"as_of": AS_OF, "plan_id": plan_id})
    return dict(frame.select("entity_id", "changes_last_hour").iter_rows())


def test_a_change_counts_once_whether_logged_or_only_in_the_ledger(con):
    _ledger(con, "p1", "logged", "applied")  # logged in the same transaction
    _log(con, "p1", "logged", "applied")
    _ledger(con, "p2", "unlogged", "applied")  # a run killed before it logged (older warehouse)
    _ledger(con, "p3", "in_doubt", "started")  # sent, outcome unknown
    _ledger(con, "p3", "never_sent", "pending")
    _ledger(con, "p4", "old", "applied", minutes_ago=300)
    assert _changes(con) == {"logged": 1, "unlogged": 1, "in_doubt": 1, "old": 0}
    # a plan re-checked before it is finished does not count its own moves against itself
    assert _changes(con, "p2") == {"logged": 1, "in_doubt": 1, "old": 0}
    # its rollback is a second change of the same ad set
    _log(con, "p1", "logged", "rolled_back", minutes_ago=5)
    assert _changes(con)["logged"] == 2


def test_a_plan_rolling_back_is_unfinished_until_every_move_is_back(con):
    for entity in ("donor", "recipient"):
        _plan_row(con, "p1", entity)
    _ledger(con, "p1", "donor", "applied")  # its rollback call failed
    _ledger(con, "p1", "recipient", "rolled_back")
    assert db.read(con, "select_unfinished_plans").height == 0  # every step sent: no marker

    db.run(
        con,
        "insert_execution_rollback",
        {"plan_id": "p1", "reason": "moved", "run_id": "r", "started_at": AS_OF},
    )
    unfinished = db.read(con, "select_unfinished_plans").to_dicts()
    assert unfinished == [{"plan_id": "p1", "open_steps": 1, "pools": ["testing"]}]
    assert db.one(con, "select_execution_rollback", {"plan_id": "p1"}) == (True, True)

    db.run(con, "update_execution_rollback_ended", {"plan_id": "p1", "ended_at": AS_OF})
    assert db.read(con, "select_unfinished_plans").height == 0
    assert db.one(con, "select_execution_rollback", {"plan_id": "p1"}) == (True, False)
