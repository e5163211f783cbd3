"""Run the real assets through Dagster against a throwaway DuckDB file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.definitions import defs
from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

ASSETS = list(defs.assets or [])
CHECKS = list(defs.asset_checks or [])
ALL_KEYS = daily_partitions.get_partition_keys()


def resources(db_path: Path, pools_path: Path = DEFAULT_POOLS_PATH) -> dict:
    return {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(pools_path)),
        "account": AdAccount(scenario_path=str(DEFAULT_SCENARIO_PATH)),
    }


def range_tags(keys: list[str]) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }


def run_cycle(
    instance: dg.DagsterInstance,
    db_path: Path,
    keys: list[str] | None = None,
    *,
    pools_path: Path = DEFAULT_POOLS_PATH,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """The budget cycle (extraction → plan + blocking checks) over ``keys`` as ONE run."""
    keys = keys or ALL_KEYS
    return dg.materialize(
        ASSETS + CHECKS,
        instance=instance,
        resources=resources(db_path, pools_path),
        selection=dg.AssetSelection.groups("extraction", "warehouse", "decisions"),
        tags=range_tags(keys),
        raise_on_error=raise_on_error,
    )


def run_execution(
    instance: dg.DagsterInstance,
    db_path: Path,
    *,
    run_config: dict | None = None,
    tags: dict | None = None,
    pools_path: Path = DEFAULT_POOLS_PATH,
    with_checks: bool = False,
) -> dg.ExecuteInProcessResult:
    selection = dg.AssetSelection.groups("execution")
    if with_checks:
        selection = selection | dg.AssetSelection.checks_for_assets("rebalance_plan")
    return dg.materialize(
        ASSETS + CHECKS,
        instance=instance,
        resources=resources(db_path, pools_path),
        selection=selection,
        run_config=run_config,
        tags=tags,
        raise_on_error=False,
    )
