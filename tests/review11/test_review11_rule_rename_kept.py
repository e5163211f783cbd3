"""Review 11: a kept plan ignores an ad set renamed out of a Meta rule's filter.

A ``meta_rule`` pool matches ad sets by their (or their campaign's) name (``adset.name``,
``campaign.name`` filters), but the fingerprint of the plan's inputs
(``evaluation_point.PLAN_ENTITY_COLUMNS``) has no ``name``. A marketer who renames an ad set to
take it out of the rule ("… [hold]") gets, at every tick until the next evaluation point, the
plan that still moves it: same plan id, ``recomputed: false``; if that plan has not run yet
(sensor stopped, ``budget-pipeline run --no-execute`` reviewed first) the gate executes it.
Through the real Dagster cycle on the default simulated account."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import yaml
from dagster_helpers import ALL_KEYS, run_cycle

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

RULE = Path(__file__).parents[1] / "fixtures" / "rules" / "share_by_roas.json"
HOLD = "[hold]"


def _testing_plan(db_path: Path, plan_id: str) -> pl.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.sql(
            "SELECT entity_id, delta FROM rebalance_plans WHERE plan_id = $id AND pool = 'testing'",
            params={"id": plan_id},
        ).pl()
    finally:
        con.close()


def test_an_ad_set_renamed_out_of_the_rule_is_not_moved_by_the_kept_plan(tmp_path):
    rule = json.loads(RULE.read_text())
    rule["evaluation_spec"]["filters"].append(
        {"field": "adset.name", "value": HOLD, "operator": "NOT_CONTAIN"}
    )
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rule.json").write_text(json.dumps(rule))
    pools = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    for pool in pools["pools"]:
        if pool["name"] == "testing":
            pool |= {"policy": "meta_rule", "meta_rule": "rules/rule.json"}
    pools_path = tmp_path / "pools.yaml"
    pools_path.write_text(yaml.safe_dump(pools))
    scenario = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    db_path = tmp_path / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()

    def cycle():
        result = run_cycle(
            instance, db_path, ALL_KEYS[-36:], pools_path=pools_path, scenario_path=scenario_path
        )
        return result.asset_materializations_for_node("rebalance_plan")[-1].metadata

    first = cycle()
    plan = _testing_plan(db_path, first["plan_id"].value)
    renamed = plan.filter(pl.col("delta") > 0)["entity_id"][0]  # a recipient of the rule
    assert plan.filter(pl.col("delta") != 0).height > 1

    # the marketer renames it out of the rule, at the same evaluation point
    for campaign in scenario["campaigns"]:
        for adset in campaign["adsets"]:
            if adset["id"] == renamed:
                adset["name"] += f" {HOLD}"
    scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False))

    after = cycle()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        name = con.execute(
            "SELECT name FROM ad_entities WHERE entity_id = ?", [renamed]
        ).fetchone()[0]
    finally:
        con.close()
    assert name.endswith(HOLD)  # ad_entities has the new name
    moved = _testing_plan(db_path, after["plan_id"].value).filter(pl.col("entity_id") == renamed)
    assert moved["delta"].to_list() == [0], (
        f"the newest plan {after['plan_id'].value} (recomputed: {after['recomputed'].value}) "
        f"still moves {renamed} by {moved['delta'].to_list()} though the rule no longer matches it"
    )
