"""The pipeline's real runs with deploy/dagster.yaml: a real PostgreSQL as Dagster's storage.

The cycle, the execution gate sensor and the execution run go through the real Dagster
machinery; what they leave (runs, check evaluations, materializations, the DuckDB pool's slot)
is read back from Postgres itself. Two accounts of an accounts file running at once as two
processes: test_postgres_accounts.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from dagster_helpers import ALL_KEYS, resources, run_cycle, run_execution
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from postgres_helpers import plan_ids_checked, query

from budget_pipeline import runner
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.execution.sensors import execution_gate
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

SECOND_SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "accounts" / "shop_at.yaml"
GUARD_NAMES = sorted(g.name for g in GUARDS)


def plan_id_materialized(instance: dg.DagsterInstance, run_id: str) -> str:
    (event,) = [
        e
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key == dg.AssetKey("rebalance_plan")
    ]
    return str(event.dagster_event.materialization.metadata["plan_id"].value)


def test_cycle_gate_and_execution_run_on_postgres_storage(deploy_instance, pg, tmp_path):
    instance = deploy_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    db = tmp_path / "warehouse.duckdb"

    cycle = run_cycle(instance, db)  # the whole history as one run
    plan_id = plan_id_materialized(instance, cycle.run_id)
    assert sorted(e.check_name for e in cycle.get_asset_check_evaluations()) == GUARD_NAMES
    assert all(e.passed for e in cycle.get_asset_check_evaluations())

    # The gate sensor reads the plan and its check results from Postgres and opens.
    tick = execution_gate(dg.build_sensor_context(instance=instance))
    assert isinstance(tick, dg.SensorResult), tick
    (request,) = tick.run_requests
    assert request.run_key == plan_id
    execution = run_execution(instance, db, run_config=request.run_config, tags=request.tags)
    assert execution.success
    (applied,) = [
        m
        for m in execution.asset_materializations_for_node("budget_execution")
        if m.asset_key == dg.AssetKey("budget_execution")
    ]
    assert applied.metadata["observed"].value > 0  # observe mode: logged, nothing called

    # A later tick finds that plan's execution run in Postgres and launches nothing.
    again = execution_gate(dg.build_sensor_context(instance=instance))
    assert not again.run_requests
    assert f"already has execution run {execution.run_id}" in again.skip_reason.skip_message

    # What Postgres holds.
    runs = query(pg, "SELECT run_id, status FROM runs ORDER BY create_timestamp")
    assert runs == [(cycle.run_id, "SUCCESS"), (execution.run_id, "SUCCESS")]
    assert query(
        pg,
        "SELECT value FROM run_tags WHERE run_id = %s AND key = 'budget_pipeline/plan_id'",
        (execution.run_id,),
    ) == [(plan_id,)]
    checks = query(
        pg,
        "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s "
        "ORDER BY check_name",
        (cycle.run_id,),
    )
    assert checks == [(name, "SUCCEEDED") for name in GUARD_NAMES]
    materialized = dict(
        query(
            pg,
            "SELECT asset_key, count(*) FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key",
        )
    )
    assert materialized['["insights"]'] == len(ALL_KEYS)  # one per daily partition
    for key in ("rebalance_plan", "budget_execution", "action_log"):
        assert materialized[json.dumps([key])] == 1
    # Every DuckDB writer went through the one-slot duckdb_write pool kept in Postgres, and
    # no finished run still holds the slot.
    assert query(pg, 'SELECT concurrency_key, "limit" FROM concurrency_limits') == [
        ("duckdb_write", 1)
    ]
    assert query(pg, "SELECT run_id FROM concurrency_slots WHERE concurrency_key = %s", ("duckdb_write",)) == [(None,)]  # fmt: skip


def test_queue_runs_each_account_alone_and_accounts_side_by_side(deploy_instance):
    """What deploy/dagster.yaml asks of the daemon's queue, as the instance reads it."""
    instance = deploy_instance
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    concurrency = instance.get_concurrency_config()
    queue = concurrency.run_queue_config
    # at most one in-progress run per value of the account tag: accounts are independent
    assert queue.tag_concurrency_limits == [
        {"key": "budget_pipeline/account", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert queue.max_concurrent_runs >= 2
    # a run whose DuckDB steps would only wait on the pool stays queued
    assert queue.should_block_op_concurrency_limited_runs
    assert concurrency.pool_config.default_pool_limit == 1
    assert concurrency.pool_config.pool_granularity.value == "op"
    # a dead run is failed and its pool slots are given back
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert 0 < instance.run_monitoring_settings["free_slots_after_run_end_seconds"] <= 300
    assert 0 < instance.run_monitoring_max_runtime_seconds <= 3600


def test_an_accounts_checks_judge_its_own_plan_when_another_account_planned_since(
    deploy_instance, tmp_path
):
    instance = deploy_instance
    keys = ALL_KEYS[-3:]  # days both simulated accounts have
    db_a, db_b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    first = run_cycle(instance, db_a, keys, scenario_path=DEFAULT_SCENARIO_PATH)
    plan_a = plan_id_materialized(instance, first.run_id)
    run_cycle(instance, db_b, keys, scenario_path=SECOND_SCENARIO)

    recheck = runner.run_plan_checks(instance, resources=resources(db_a))
    assert recheck.success
    assert plan_ids_checked(instance, recheck.run_id) == {plan_a}
