"""Shared set-up for live execution against the Graph API double (real HTTP on loopback)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from budget_pipeline import runner
from budget_pipeline.contracts import PLAN, conform
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

LIVE_POOLS = Path(__file__).resolve().parent / "fixtures/pools_live_rule.yaml"
TOKEN = "EAAB-secret-token-never-to-be-seen-0451"


def live_resources(db_path: Path, pools_path: Path = LIVE_POOLS) -> dict:
    return {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(pools_path)),
        "account": AdAccount(scenario_path=str(DEFAULT_SCENARIO_PATH)),
    }


def live_cycle(instance: dg.DagsterInstance, db_path: Path, keys, pools_path: Path = LIVE_POOLS):
    result = runner.run_cycle(instance, keys, resources=live_resources(db_path, pools_path))
    assert result.success, result.get_step_failure_events()
    return result


def stored_plans(db_path: Path) -> pl.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return conform(con.sql("SELECT * FROM rebalance_plans").pl(), PLAN)
    finally:
        con.close()


def budget_posts(handle, entity_id: str | None = None) -> list[tuple[str, str]]:
    posts = [
        (r["path"].rsplit("/", 1)[-1], r["params"]["daily_budget"])
        for r in handle.requests
        if r["method"] == "POST" and "daily_budget" in r["params"]
    ]
    return [p for p in posts if entity_id is None or p[0] == entity_id]


def budgets_at(handle) -> dict[str, int]:
    return dict(handle.account.entities().select("entity_id", "daily_budget").iter_rows())


def assert_plan_complete_or_rolled_back(handle, plan: pl.DataFrame, pools=("testing",)) -> str:
    """The money invariant: every pool's total equals the plan's, or the plan's before-values;
    and so does every entity (nobody else moved them in these tests). Returns which."""
    now = budgets_at(handle)
    verdicts = set()
    for pool in pools:
        rows = plan.filter(pl.col("pool") == pool)
        total = sum(now[e] for e in rows["entity_id"])
        after, before = int(rows["new_budget"].sum()), int(rows["old_budget"].sum())
        by_entity = [now[e] for e in rows["entity_id"]]
        if total == after and by_entity == rows["new_budget"].to_list():
            verdicts.add("complete")
        elif total == before and by_entity == rows["old_budget"].to_list():
            verdicts.add("rolled_back")
        else:
            raise AssertionError(
                f"pool {pool}: budgets total {total}, plan after {after}, before {before}: "
                f"money was lost or created ({dict(zip(rows['entity_id'], by_entity, strict=True))})"
            )
    assert len(verdicts) == 1, verdicts
    return verdicts.pop()


def live_pools_data() -> dict:
    """LIVE_POOLS as a dict to change and write elsewhere: its rule path made absolute."""
    import yaml

    data = yaml.safe_load(LIVE_POOLS.read_text())
    for pool in data["pools"]:
        if pool.get("meta_rule"):
            pool["meta_rule"] = str((LIVE_POOLS.parent / pool["meta_rule"]).resolve())
    return data
