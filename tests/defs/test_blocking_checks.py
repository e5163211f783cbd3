"""A deliberately broken plan fails its blocking check, and budget_execution does not run."""

from __future__ import annotations

import shutil
from datetime import timedelta

import dagster as dg
import duckdb
import pytest
import yaml
from dagster_helpers import ALL_KEYS, run_cycle, run_execution

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.defs.execution.sensors import execution_gate


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """A cycle over the newest 40 days (enough history for scores and moves)."""
    tmp = tmp_path_factory.mktemp("planned")
    db_path = tmp / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    result = run_cycle(instance, db_path, ALL_KEYS[-40:])
    assert result.success
    return instance, db_path


def _con(path):
    return duckdb.connect(str(path))


def _moved_pair(con):
    """Two budget holders of one pool: the first one the plan moves, if any."""
    rows = con.execute(
        "SELECT pool, entity_id, old_budget FROM rebalance_plans ORDER BY delta = 0, pool, entity_id"
    ).fetchall()
    first = rows[0]
    second = next(r for r in rows if r[0] == first[0] and r[1] != first[1])
    return first, second


def _set(con, entity_id, new_budget):
    con.execute(
        "UPDATE rebalance_plans SET new_budget = ?, delta = ? - old_budget WHERE entity_id = ?",
        [new_budget, new_budget, entity_id],
    )


def break_floor(con, tmp_path):
    con.execute(
        "UPDATE rebalance_plans SET new_budget = 100, delta = 100 - old_budget WHERE pool = 'prospecting'"
    )


def break_ceiling(con, tmp_path):
    con.execute(
        "UPDATE rebalance_plans SET new_budget = old_budget * 3, delta = old_budget * 2 WHERE pool = 'prospecting'"
    )


def break_learning_limit(con, tmp_path):
    (_pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    step = a_old * 30 // 100
    _set(con, a, a_old + step)
    _set(con, b, b_old - step)


def break_conservation(con, tmp_path):
    (_, a, a_old), _ = _moved_pair(con)
    _set(con, a, a_old + 1)


def break_min_interval(con, tmp_path):
    (pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    _set(con, a, a_old + 100)
    _set(con, b, b_old - 100)
    (as_of,) = con.execute("SELECT any_value(as_of) FROM rebalance_plans").fetchone()
    con.execute(
        "INSERT INTO action_log VALUES ('x1', 'plan-earlier', NULL, ?, 'adset', ?, 'live', 'budget', "
        "1, 2, 'ACTIVE', 'ACTIVE', 'applied', 'test', ?, now())",
        [a, pool, as_of - timedelta(hours=1)],
    )


def break_locked(con, tmp_path):
    (pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    _set(con, a, a_old + 100)
    _set(con, b, b_old - 100)
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    for p in config["pools"]:
        if p["name"] == pool:
            p["locked"] = [a]
    path = tmp_path / "pools_locked.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def break_pause_keeps_budget(con, tmp_path):
    (_pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    con.execute(
        "UPDATE rebalance_plans SET pause = true, action = 'pause' WHERE entity_id = ?", [a]
    )
    _set(con, a, a_old - 100)
    _set(con, b, b_old + 100)


def break_skips_learning(con, tmp_path):
    (_pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    _set(con, a, a_old + 100)
    _set(con, b, b_old - 100)
    con.execute("INSERT INTO learning_stages VALUES (?, true, 'LEARNING')", [a])
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    config["settings"]["skip_learning"] = True
    path = tmp_path / "pools_skip_learning.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def break_min_budget(con, tmp_path):
    (_pool, a, a_old), (_, b, b_old) = _moved_pair(con)
    _set(con, a, 50)
    _set(con, b, b_old + a_old - 50)


BREAKERS = {
    "rebalance_plan_within_floors": break_floor,
    "rebalance_plan_within_ceilings": break_ceiling,
    "rebalance_plan_learning_limit": break_learning_limit,
    "rebalance_plan_conserves_money": break_conservation,
    "rebalance_plan_min_interval": break_min_interval,
    "rebalance_plan_locked_untouched": break_locked,
    "rebalance_plan_min_budget": break_min_budget,
    "rebalance_plan_pause_keeps_budget": break_pause_keeps_budget,
    "rebalance_plan_skips_learning": break_skips_learning,
}


@pytest.mark.parametrize("check_name", sorted(BREAKERS))
def test_broken_plan_fails_its_check_and_execution_does_not_run(planned, tmp_path, check_name):
    instance, planned_db = planned  # the instance holds the plan's materialization
    db_path = tmp_path / "broken.duckdb"
    shutil.copyfile(planned_db, db_path)
    con = _con(db_path)
    try:
        pools_path = BREAKERS[check_name](con, tmp_path) or DEFAULT_POOLS_PATH
    finally:
        con.close()
    result = run_execution(instance, db_path, pools_path=pools_path, with_checks=True)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations[check_name] is False
    assert not result.success
    assert result.asset_materializations_for_node("budget_execution") == []
    con = _con(db_path)
    try:
        assert (
            con.execute(
                "SELECT count(*) FROM action_log WHERE plan_id != 'plan-earlier'"
            ).fetchone()[0]
            == 0
        )
    finally:
        con.close()


def test_unbroken_plan_passes_every_check_and_executes(planned, tmp_path):
    """The control: with the same instance and the plan untouched, execution does run, so
    the broken cases above fail because of the checks, not the set-up."""
    instance, planned_db = planned
    db_path = tmp_path / "ok.duckdb"
    shutil.copyfile(planned_db, db_path)
    result = run_execution(instance, db_path, with_checks=True)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == dict.fromkeys(BREAKERS, True)
    assert result.success
    assert result.asset_materializations_for_node("budget_execution") != []
    con = _con(db_path)
    try:
        assert con.execute("SELECT count(*) FROM action_log").fetchone()[0] > 0
    finally:
        con.close()


def test_gate_stays_closed_for_a_plan_whose_check_failed(tmp_path):
    """Blocking checks only stop downstream work in their own run: the gate must look."""
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "gate.duckdb"
    assert run_cycle(instance, db_path, ALL_KEYS[-35:]).success
    open_decision = execution_gate(dg.build_sensor_context(instance=instance))
    plan_id = open_decision.run_requests[0].run_key if open_decision.run_requests else None
    # now the plan is tampered with and the checks re-run in a later run: they fail
    con = _con(db_path)
    try:
        break_conservation(con, tmp_path)
    finally:
        con.close()
    rerun = run_execution(instance, db_path, with_checks=True)
    assert not rerun.success
    closed = execution_gate(dg.build_sensor_context(instance=instance))
    assert not getattr(closed, "run_requests", None)
    message = (
        closed.skip_message
        if isinstance(closed, dg.SkipReason)
        else closed.skip_reason.skip_message
    )
    assert "blocked" in message and "rebalance_plan_conserves_money: failed" in message
    assert plan_id is None or plan_id in message


def test_gate_waits_while_checks_are_pending_and_opens_once_they_pass(tmp_path):
    """Review finding: a tick between the plan and its checks must not shut the gate for good."""
    from dagster_helpers import resources

    from budget_pipeline import runner

    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "pending.duckdb"
    cycle = runner.run_cycle(
        instance, ALL_KEYS[-35:], resources=resources(db_path), with_checks=False
    )
    assert cycle.success and cycle.get_asset_check_evaluations() == []
    waiting = execution_gate(dg.build_sensor_context(instance=instance))
    assert (
        isinstance(waiting, dg.SkipReason)
        and f"waiting for {len(BREAKERS)} check(s)" in waiting.skip_message
    )
    context = dg.build_sensor_context(instance=instance)
    execution_gate(context)
    assert context.cursor is None  # nothing was marked handled
    assert runner.run_plan_checks(instance, resources=resources(db_path)).success
    opened = execution_gate(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert len(opened.run_requests) == 1
