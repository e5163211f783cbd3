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


def definitions(
    db_path: Path,
    pools_path: Path = DEFAULT_POOLS_PATH,
    scenario_path: Path = DEFAULT_SCENARIO_PATH,
) -> dg.Definitions:
    """The real code location, bound to a throwaway warehouse."""
    from budget_pipeline.definitions import build_defs

    return build_defs(resources(db_path, pools_path, scenario_path))


def launch(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    request: dg.RunRequest,
    job_name: str,
) -> dg.ExecuteInProcessResult:
    """Execute a schedule's or sensor's RunRequest as the daemon would: the job it names,
    with the request's partition key, tags and run config."""
    job = defs.resolve_job_def(request.job_name or job_name)
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=dict(request.tags),
        run_config=request.run_config or None,
        raise_on_error=False,
    )


def tick_schedule(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, when):
    """One tick of a schedule at ``when`` (aware datetime): its run requests."""
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return schedule.evaluate_tick(context)


def tick_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor=None):
    """One tick of a sensor: its SensorExecutionData (run_requests, cursor, skip_message)."""
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=defs.get_repository_def()
    )
    return sensor.evaluate_tick(context)
