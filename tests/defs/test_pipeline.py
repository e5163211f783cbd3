"""The whole pipeline through the real Dagster machinery, on the default simulated account."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
from dagster_helpers import ALL_KEYS, run_cycle, run_execution

from budget_pipeline.definitions import defs
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.execution.sensors import execution_gate
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.simulated import load_scenario

SCENARIO = load_scenario(DEFAULT_SCENARIO_PATH)


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    """One full cycle over the whole default history (60 partitions, one run)."""
    tmp = tmp_path_factory.mktemp("cycle")
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp / "warehouse.duckdb"
    result = run_cycle(instance, db_path)
    return instance, db_path, result


def query(db_path, sql, params=None):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_definitions_load_with_every_asset_schedule_and_sensor():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "ad_entities", "raw_insights", "insights", "entity_baselines", "composite_scores",
        "trigger_states", "rebalance_plan", "budget_execution", "action_log",
    } <= keys  # fmt: skip
    assert {s.name for s in defs.schedules} == {
        "daily_cycle_schedule", "intraday_30min_schedule", "weekly_monitoring_schedule",
    }  # fmt: skip
    assert [s.name for s in defs.sensors] == [
        "execution_gate", "dead_run_reaper", "alert_on_plan_pause", "alert_on_failed_check", "alert_on_run_failure",
        "alert_on_partial_execution", "alert_on_score_drift",
    ]  # fmt: skip
    check_names = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {g.name for g in GUARDS} <= check_names
    assert len(ALL_KEYS) == SCENARIO.days


def test_cycle_leaves_sixty_days_of_hourly_insights_for_every_adset_and_a_plan(cycled):
    _, db_path, result = cycled
    assert result.success
    adset_ids = {a.id for c in SCENARIO.campaigns for a in c.adsets}
    rows = query(
        db_path,
        "SELECT adset_id, count(DISTINCT date), min(date), max(date), count(*) FROM insights GROUP BY 1",
    )
    by_adset = {r[0]: r[1:] for r in rows}
    assert set(by_adset) == adset_ids
    first, last = SCENARIO.start, SCENARIO.start + timedelta(days=SCENARIO.days - 1)
    (days,) = query(db_path, "SELECT count(DISTINCT date) FROM insights")[0]
    assert days == SCENARIO.days
    assert query(db_path, "SELECT min(date), max(date) FROM insights")[0] == (first, last)
    # hourly: 24 rows a day for an ad set that delivered all day
    (full_days,) = query(
        db_path,
        "SELECT count(*) FROM (SELECT adset_id, date FROM insights GROUP BY ALL HAVING count(*) = 24)",
    )[0]
    assert full_days > 0.8 * len(adset_ids) * SCENARIO.days
    plan_ids = query(db_path, "SELECT DISTINCT plan_id FROM rebalance_plans")
    assert len(plan_ids) == 1
    mat = result.asset_materializations_for_node("rebalance_plan")[-1]
    assert mat.metadata["plan_id"].value == plan_ids[0][0]
    assert mat.metadata["conserved"].value is True
    moved = query(db_path, "SELECT entity_id FROM rebalance_plans WHERE delta != 0 OR pause")
    assert moved, "the default account's plan has moves"
    table = mat.metadata["moves_table"].value  # a markdown table of the moves with reasons
    assert all(entity_id in table for (entity_id,) in moved)


def test_every_blocking_check_ran_and_passed_on_the_real_plan(cycled):
    _, _, result = cycled
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {g.name: True for g in GUARDS}


def test_metadata_a_marketer_can_read(cycled):
    _, _, result = cycled
    entities = result.asset_materializations_for_node("ad_entities")[-1].metadata
    assert entities["adsets"].value == sum(len(c.adsets) for c in SCENARIO.campaigns)
    assert "retargeting" in entities["pools"].value
    scores = result.asset_materializations_for_node("composite_scores")[-1].metadata
    assert "reason" in scores["scores_and_why"].value
    insights = result.asset_materializations_for_node("insights")[-1].metadata
    assert insights["window_days"].value == SCENARIO.days
    assert insights["day"].value == ALL_KEYS[-1]  # each partition shows its own day


def test_rerunning_a_partition_replaces_rows_and_never_duplicates(cycled, tmp_path):
    _instance, db_path, _ = cycled
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db_path, copy)
    before = query(copy, "SELECT count(*), sum(spend), sum(conversions) FROM insights")[0]
    day = ALL_KEYS[30]
    for _ in range(2):
        run_cycle(dg.DagsterInstance.ephemeral(), copy, [day])
    after = query(copy, "SELECT count(*), sum(spend), sum(conversions) FROM insights")[0]
    assert after[0] == before[0]
    assert after[1] == pytest.approx(before[1])
    (dupes,) = query(
        copy,
        "SELECT count(*) FROM (SELECT adset_id, date, hour FROM insights GROUP BY ALL HAVING count(*) > 1)",
    )[0]
    assert dupes == 0
    # the re-pull window of that partition: its own day and the two before it
    window = query(
        copy,
        "SELECT min(date), max(date) FROM raw_insights WHERE pulled_at = (SELECT max(pulled_at) FROM raw_insights)",
    )[0]
    assert window == (date.fromisoformat(day) - timedelta(days=2), date.fromisoformat(day))


def test_gate_launches_execution_once_per_plan_and_observe_mode_logs_without_calling(
    cycled, tmp_path
):
    instance, db_path, result = cycled
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db_path, copy)
    plan_meta = result.asset_materializations_for_node("rebalance_plan")[-1].metadata
    plan_id = plan_meta["plan_id"].value
    changes = plan_meta["moves"].value + plan_meta["pauses"].value

    context = dg.build_sensor_context(instance=instance, cursor=None)
    decision = execution_gate(context)
    if changes == 0:
        pytest.skip("default scenario produced no changes")  # pragma: no cover
    assert [r.run_key for r in decision.run_requests] == [plan_id]
    request = decision.run_requests[0]

    again = execution_gate(dg.build_sensor_context(instance=instance, cursor=decision.cursor))
    assert isinstance(again, dg.SkipReason) or not again.run_requests

    before_budgets = query(copy, "SELECT entity_id, daily_budget FROM ad_entities ORDER BY 1")
    exe = run_execution(instance, copy, run_config=request.run_config, tags=request.tags)
    assert exe.success
    # a fresh sensor (no cursor, e.g. the daemon after a CLI run) sees the run and stays shut
    fresh = execution_gate(dg.build_sensor_context(instance=instance, cursor=None))
    assert not getattr(fresh, "run_requests", None)
    assert "already has execution run" in fresh.skip_reason.skip_message
    log = query(copy, "SELECT mode, status, count(*) FROM action_log GROUP BY ALL")
    assert log == [("observe", "observed", changes)]
    moved = query(
        copy,
        "SELECT count(*) FROM action_log a JOIN rebalance_plans p USING (plan_id, entity_id) "
        "WHERE a.step = 'budget' AND a.before_budget = p.old_budget AND a.after_budget = p.new_budget",
    )[0][0]
    assert moved == plan_meta["moves"].value
    # observe mode called nothing: the simulated account's budgets are untouched
    assert query(copy, "SELECT count(*) FROM simulated_account_state")[0][0] == 0
    assert (
        query(copy, "SELECT entity_id, daily_budget FROM ad_entities ORDER BY 1") == before_budgets
    )
    # the same plan id again appends nothing
    exe2 = run_execution(instance, copy, run_config=request.run_config)
    assert exe2.success
    assert query(copy, "SELECT count(*) FROM action_log")[0][0] == changes
