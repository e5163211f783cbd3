"""Review 11b: a backfill at the same evaluation point recomputes the scores and the plan, but
not the triggers, so a composite pool's plan is made from the short history's actions.

fdcf7ad put the Insights' coverage in the scores' and plan's fingerprints, so `budget-pipeline
run --days 8` then `budget-pipeline run` (the whole history, the same newest hour) scores and
plans again. ``trigger_states`` has no fingerprint: it re-evaluates only at a NEW point, so the
actions at the point stay those fired on eight days of data (none), and the recomputed plan of
a ``composite`` pool (which moves on trigger actions) moves nothing, where the same data in a
fresh warehouse decreases and pauses two losing ad sets. (The default pools use
``marginal_return``, which ignores actions, so review 11's test did not see it.) Through the
real Dagster cycle on the default simulated account."""

from __future__ import annotations

import dagster as dg
import duckdb
import yaml
from dagster_helpers import ALL_KEYS, run_cycle

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH


def _rows(db_path, sql: str, **params) -> list[tuple]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _decided(instance, db_path, keys, pools_path) -> tuple[list, list]:
    result = run_cycle(instance, db_path, keys, pools_path=pools_path)
    meta = result.asset_materializations_for_node("rebalance_plan")[-1].metadata
    actions = _rows(
        db_path,
        "SELECT entity_id, action, trigger FROM trigger_actions "
        "WHERE as_of = (SELECT max(as_of) FROM trigger_actions) ORDER BY ALL",
    )
    moves = _rows(
        db_path,
        "SELECT entity_id, new_budget, pause FROM rebalance_plans "
        "WHERE plan_id = $plan AND (delta <> 0 OR pause) ORDER BY ALL",
        plan=meta["plan_id"].value,
    )
    return actions, moves


def test_a_backfill_at_the_same_point_fires_the_triggers_a_fresh_warehouse_fires(tmp_path):
    raw = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    for pool in raw["pools"]:
        pool["policy"] = "composite"  # budgets move on the triggers' actions
    pools = tmp_path / "pools.yaml"
    pools.write_text(yaml.safe_dump(raw))

    fresh_actions, fresh_moves = _decided(
        dg.DagsterInstance.ephemeral(), tmp_path / "fresh.duckdb", ALL_KEYS[-36:], pools
    )
    assert fresh_moves, "the whole history decided afresh moves money"

    db_path = tmp_path / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    _decided(instance, db_path, ALL_KEYS[-8:], pools)  # "try it first": eight days
    actions, moves = _decided(instance, db_path, ALL_KEYS[-36:], pools)  # same newest hour
    assert actions == fresh_actions, "trigger actions kept from the eight-day warehouse"
    assert moves == fresh_moves, (
        f"the recomputed plan moves {moves}; the same data decided afresh moves {fresh_moves}"
    )
