"""The Dagster code location: ``budget_pipeline.definitions:defs`` (the single account the
environment describes). With an accounts file, each ad account is its own code location:
``budget_pipeline.locations:<name>`` (see :mod:`budget_pipeline.defs.accounts`)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from budget_pipeline.defs.alerts.sensors import ALERT_SENSORS
from budget_pipeline.defs.cli_logging import cli_logger
from budget_pipeline.defs.constants import DUCKDB_POOL
from budget_pipeline.defs.counterfactual.assets import COUNTERFACTUAL_ASSETS
from budget_pipeline.defs.decisions.assets import composite_scores, rebalance_plan, trigger_states
from budget_pipeline.defs.decisions.checks import rebalance_plan_guards
from budget_pipeline.defs.execution.assets import budget_execution
from budget_pipeline.defs.execution.sensors import execution_gate
from budget_pipeline.defs.extraction.assets import ad_entities, raw_insights
from budget_pipeline.defs.jobs import cycle_job, execution_job
from budget_pipeline.defs.monitoring.assets import MONITORING_ASSETS
from budget_pipeline.defs.monitoring.calibration import score_calibration
from budget_pipeline.defs.monitoring.jobs import monitoring_definitions
from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.resources import default_resources
from budget_pipeline.defs.rollback.job import rollback_job
from budget_pipeline.defs.run_health import dead_run_reaper
from budget_pipeline.defs.schedules import cycle_schedules
from budget_pipeline.defs.scope import resources_scope
from budget_pipeline.defs.warehouse.assets import entity_baselines, insights

ASSETS = [
    ad_entities,
    raw_insights,
    insights,
    entity_baselines,
    composite_scores,
    trigger_states,
    rebalance_plan,
    budget_execution,
    *MONITORING_ASSETS,
    score_calibration,
    *COUNTERFACTUAL_ASSETS,
]
ASSET_CHECKS = [rebalance_plan_guards]
SENSORS = [execution_gate, dead_run_reaper, *ALERT_SENSORS]
# Dagster's console logger by default; `budget-pipeline run` selects "cli" (a log file and one
# line per stage) through the run config.
LOGGERS = {"console": dg.colored_console_logger, "cli": cli_logger}


def assemble(
    *,
    assets: list,
    asset_checks: list,
    resources: Mapping[str, object],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    tags: Mapping[str, str],
    pool: str = DUCKDB_POOL,
) -> dg.Definitions:
    """The code location of one ad account: its assets and checks, its jobs (every run tagged
    with ``tags``, the account), schedules on its partitions' timezone, the sensors (which
    take the account from ``resources``)."""
    cycle = cycle_job(partitions_def, tags)
    daily, intraday = cycle_schedules(cycle, partitions_def)
    monitoring, weekly = monitoring_definitions(partitions_def.timezone, tags)
    rollback = rollback_job(pool, tags)
    return dg.Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[cycle, execution_job(tags), monitoring, rollback],
        schedules=[daily, intraday, weekly],
        sensors=SENSORS,
        loggers=LOGGERS,
        resources=dict(resources),
        # In-process: 5–6 s per run on two cores against 26–31 s for the multiprocess executor,
        # and DuckDB has a single writer anyway.
        executor=dg.in_process_executor,
    )


def build_defs(resources: Mapping[str, object] | None = None) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, bound to ``resources`` (default: the
    warehouse, pools file and account the environment names)."""
    resources = dict(resources) if resources is not None else default_resources()
    scope = resources_scope(resources)
    return assemble(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        resources=resources,
        partitions_def=daily_partitions,
        tags=scope.tags if scope is not None else {},
    )


defs = build_defs()
