"""Run the real assets through Dagster against a throwaway DuckDB file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import yaml

from budget_pipeline import runner
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.accounts import open_simulated

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


def short_clock_account(folder: Path) -> tuple[Path, Path]:
    """A warehouse path in ``folder`` and a copy of the default scenario whose clock stops at
    the start of its last partition's day, so that day's hours arrive tick by tick
    (:func:`advance`)."""
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    raw["days"] -= 1
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder / "warehouse.duckdb", scenario


def advance(db_path: Path, scenario: Path, hours: int) -> None:
    """Move the simulated account's clock ``hours`` on (the hours a tick then extracts)."""
    con = duckdb.connect(str(db_path))
    try:
        open_simulated(con, scenario).advance(hours)
    finally:
        con.close()


def newest_scores_vs_fresh(db_path: Path, config) -> tuple[pl.DataFrame, ...]:
    """At the newest scored point: the scores composite_scores stored, the ones computed
    afresh from the warehouse as it is now, the baselines entity_baselines stored (by as_of,
    adset_id) and the fresh ones."""
    from budget_pipeline import db
    from budget_pipeline.contracts import AD_ENTITIES, SCORES, conform
    from budget_pipeline.defs.decisions.assets import windows_needed
    from budget_pipeline.engine import baselines as engine_baselines
    from budget_pipeline.engine.scoring import score_entities

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        as_of = con.execute("SELECT max(as_of) FROM composite_scores").fetchall()[0][0]
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        windows, baselines = engine_baselines.score_inputs(
            con, [as_of], config.settings, windows_needed(config), entities
        )
        want = conform(score_entities(windows, baselines, entities, config), SCORES)
        got = conform(db.read(con, "select_composite_scores_at", {"as_of": [as_of]}), SCORES)
        stored = conform(db.read(con, "select_stored_entity_baselines"), engine_baselines.BASELINES)
        return got, want, stored.sort("as_of", "adset_id"), baselines
    finally:
        con.close()
