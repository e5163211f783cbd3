"""Run the real assets through Dagster against a throwaway DuckDB file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from budget_pipeline import runner
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

ALL_KEYS = runner.partition_keys()


def resources(
    db_path: Path,
    pools_path: Path = DEFAULT_POOLS_PATH,
    scenario_path: Path = DEFAULT_SCENARIO_PATH,
) -> dict:
    return {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(pools_path)),
        "account": AdAccount(scenario_path=str(scenario_path)),
    }


def run_cycle(
    instance: dg.DagsterInstance,
    db_path: Path,
    keys: list[str] | None = None,
    *,
    pools_path: Path = DEFAULT_POOLS_PATH,
    scenario_path: Path = DEFAULT_SCENARIO_PATH,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """The budget cycle (extraction → plan + blocking checks) over ``keys`` as ONE run."""
    result = runner.run_cycle(
        instance, keys, resources=resources(db_path, pools_path, scenario_path)
    )
    if raise_on_error and not result.success:
        raise AssertionError(f"cycle run failed: {result.get_step_failure_events()}")
    return result


def run_execution(
    instance: dg.DagsterInstance,
    db_path: Path,
    *,
    run_config: dict | None = None,
    tags: dict | None = None,
    pools_path: Path = DEFAULT_POOLS_PATH,
    with_checks: bool = False,
) -> dg.ExecuteInProcessResult:
    return runner.run_execution(
        instance,
        resources=resources(db_path, pools_path),
        run_config=run_config,
        tags=tags,
        with_checks=with_checks,
    )
