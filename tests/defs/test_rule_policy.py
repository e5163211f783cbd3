"""A pool whose policy is a Meta rule, through the real Dagster cycle."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import polars as pl
import yaml
from dagster_helpers import ALL_KEYS, run_cycle

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH

RULE = {
    "name": "Share the testing pool by cost per purchase",
    "evaluation_spec": {
        "evaluation_type": "SCHEDULE",
        "filters": [
            {"field": "entity_type", "value": "ADSET", "operator": "EQUAL"},
            {"field": "time_preset", "value": "LAST_7D", "operator": "EQUAL"},
            {"field": "spent", "value": 0, "operator": "GREATER_THAN"},
        ],
    },
    "execution_spec": {
        "execution_type": "REBALANCE_BUDGET",
        "execution_options": [
            {
                "field": "rebalance_spec",
                "value": {
                    "type": "MATCHED_ONLY_PROPORTIONAL",
                    "target_field": "cost_per_purchase_fb",
                    "is_inverse": True,
                },
                "operator": "EQUAL",
            }
        ],
    },
}


def test_a_rule_pool_is_planned_by_its_rule_within_every_guard(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "testing.json").write_text(json.dumps(RULE))
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    for pool in config["pools"]:
        if pool["name"] == "testing":
            pool |= {"policy": "meta_rule", "meta_rule": "rules/testing.json"}
    pools_path = tmp_path / "pools.yaml"
    pools_path.write_text(yaml.safe_dump(config))

    db_path = tmp_path / "rule.duckdb"
    result = run_cycle(
        dg.DagsterInstance.ephemeral(), db_path, ALL_KEYS[-35:], pools_path=pools_path
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        plan = con.sql("SELECT * FROM rebalance_plans").pl()
    finally:
        con.close()
    testing = plan.filter(pl.col("pool") == "testing")
    moved = testing.filter(pl.col("delta") != 0)
    assert moved.height > 0, "the rule redistributes the testing pool"
    assert all(r.startswith("meta rule") for r in testing["reason"].to_list() if r)
    assert testing["delta"].sum() == 0  # MATCHED_ONLY moves money inside the pool
    # the composite pools are still planned by their triggers
    others = plan.filter(pl.col("pool") != "testing")
    assert not any((r or "").startswith("meta rule") for r in others["reason"].to_list())
