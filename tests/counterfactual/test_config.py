"""The policy a counterfactual runs: a Meta rule given in config, or a clear error."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_helpers import ALL_KEYS

import budget_pipeline

RULES = Path(budget_pipeline.__file__).parent / "examples" / "rules"
KEYS = ALL_KEYS[-21:]


def _error(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = result.get_step_failure_events()
    return failure.event_specific_data.error.to_string()  # the step error and its cause


def _rows(db_path: Path, table: str) -> int:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def _plans_config(rule_path: str) -> dict:
    return {"ops": {"counterfactual_plans": {"config": {"rule_path": rule_path}}}}


def test_a_meta_rule_given_in_config_runs_in_every_pool(warehouse, counterfactual, read_table):
    rule = RULES / "no_pause_proportional_roas.json"
    result = counterfactual(
        dg.DagsterInstance.ephemeral(),
        warehouse,
        KEYS,
        run_config=_plans_config(str(rule)),
        selection="counterfactual_plans",
    )
    assert result.success
    plans = read_table(warehouse, "counterfactual_plans")
    assert plans["policy"].unique().to_list() == [
        "Meta rule no_pause_proportional_roas.json in every pool"
    ]
    moved = plans.filter(pl.col("delta") != 0)
    assert set(moved["pool"]) == {"prospecting", "retargeting", "testing"}
    # the rule's pool keeps its money (a Meta rule moves money within its pool only)
    per_pool_day = plans.group_by("date", "pool").agg(pl.col("delta").sum())
    assert (per_pool_day["delta"] == 0).all()
    meta = result.asset_materializations_for_node("counterfactual_plans")[0].metadata
    assert meta["policy"].value.startswith("Meta rule")


def test_an_unknown_rule_path_fails_with_the_field_and_the_paths_tried(warehouse, counterfactual):
    result = counterfactual(
        dg.DagsterInstance.ephemeral(),
        warehouse,
        KEYS,
        run_config=_plans_config("rules/no_such_rule.json"),
        selection="counterfactual_plans",
    )
    assert not result.success
    message = _error(result)
    assert "rule_path='rules/no_such_rule.json'" in message
    assert "no such rule file" in message and "no_such_rule.json" in message
    assert _rows(warehouse, "counterfactual_plans") == 0  # nothing written


def test_a_broken_rule_file_fails_naming_the_file(warehouse, counterfactual, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"evaluation_spec": ')
    result = counterfactual(
        dg.DagsterInstance.ephemeral(),
        warehouse,
        KEYS,
        run_config=_plans_config(str(broken)),
        selection="counterfactual_plans",
    )
    assert not result.success
    message = _error(result)
    assert "broken.json" in message and "not valid JSON" in message
    assert _rows(warehouse, "counterfactual_plans") == 0


def test_outcomes_without_plans_say_which_asset_to_materialize_first(warehouse, counterfactual):
    result = counterfactual(
        dg.DagsterInstance.ephemeral(), warehouse, KEYS, selection="counterfactual_outcomes"
    )
    assert not result.success
    assert "materialize counterfactual_plans" in _error(result)
    assert _rows(warehouse, "counterfactual_outcomes") == 0


def test_an_empty_warehouse_says_to_run_the_cycle_first(tmp_path, counterfactual):
    empty = tmp_path / "empty.duckdb"
    result = counterfactual(
        dg.DagsterInstance.ephemeral(), empty, KEYS, selection="counterfactual_plans"
    )
    assert not result.success
    message = _error(result)
    assert "insights table is empty" in message and "materialize raw_insights" in message
    assert _rows(empty, "counterfactual_plans") == 0
