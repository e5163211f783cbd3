"""One closed-loop run of the pipeline's own decisions on the simulated account.

Day 0 (the clock at the end of the history): the cycle backfills the whole history as one run,
as a first ``budget-pipeline run`` does. Every day after: the clock has advanced 24 hours and
the cycle runs the day that just ended as a single-partition run (as the daily schedule does,
re-pulling the days before it). After each cycle the execution gate decides, and every run it
requests — the new plan, or a plan to finish — executes through ``budget_execution_job``, live
in every pool. All runs share one ephemeral Dagster instance and one warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg
import duckdb
import polars as pl

from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.simulation.environment import LoopInputs
from budget_pipeline.sources.accounts import open_simulated


@dataclass(frozen=True)
class DayRecord:
    day: int
    as_of: str
    plan_id: str | None
    moves: int
    pauses: int
    checks_passed: bool
    executions: list[str]  # outcome of each execution run launched that day
    seconds: float


@dataclass
class LoopOutcome:
    changes: list[dict]  # the account's state()["changes"] at the end
    days: list[DayRecord] = field(default_factory=list)
    action_log: pl.DataFrame | None = None
    seconds: float = 0.0


def _resources(inputs: LoopInputs) -> dict:
    return {
        "warehouse": Warehouse(database=str(inputs.db_path)),
        "pools": PoolsResource(path=str(inputs.pools_path)),
        "account": AdAccount(scenario_path=str(inputs.scenario_path)),
    }


def _advance(inputs: LoopInputs, hours: int) -> None:
    con = duckdb.connect(str(inputs.db_path))
    try:
        open_simulated(con, inputs.scenario_path).advance(hours)
    finally:
        con.close()


def _state(inputs: LoopInputs) -> dict:
    con = duckdb.connect(str(inputs.db_path))
    try:
        return open_simulated(con, inputs.scenario_path).account.state()
    finally:
        con.close()


def _outcome(result: dg.ExecuteInProcessResult) -> str:
    for mat in result.asset_materializations_for_node("budget_execution"):
        if mat.asset_key == dg.AssetKey("budget_execution"):
            return str(mat.metadata["outcome"].value)
    return "failed" if not result.success else "nothing"


def run_closed_loop(
    inputs: LoopInputs,
    days: int,
    *,
    on_day: Callable[[DayRecord], None] | None = None,
) -> LoopOutcome:
    """Run the pipeline's decisions for ``days`` days on ``inputs`` (see the module docstring)."""
    from budget_pipeline.definitions import build_defs
    from budget_pipeline.defs.execution.sensors import gate_request
    from budget_pipeline.defs.partitions import daily_partitions

    scenario = inputs.scenario
    last_needed = (scenario.end + timedelta(days=days - 2)).isoformat()
    if days > 1 and not daily_partitions.has_partition_key(last_needed):
        raise RuntimeError(
            f"the daily partitions end at {daily_partitions.get_last_partition_key()}, before "
            f"{last_needed}: call simulation.environment.prepare_process first"
        )
    started = time.perf_counter()
    defs = build_defs(_resources(inputs))
    cycle_job = defs.resolve_job_def("budget_cycle_job")
    execution_job = defs.resolve_job_def("budget_execution_job")
    instance = dg.DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    history = [(scenario.start + timedelta(days=d)).isoformat() for d in (0, scenario.days - 1)]
    outcome = LoopOutcome(changes=[])
    cursor = None
    for day in range(days):
        day_started = time.perf_counter()
        if day == 0:
            cycle = cycle_job.execute_in_process(
                instance=instance,
                run_config=quiet,
                tags={
                    "dagster/asset_partition_range_start": history[0],
                    "dagster/asset_partition_range_end": history[1],
                },
                raise_on_error=False,
            )
        else:
            key = (scenario.end + timedelta(days=day - 1)).isoformat()
            cycle = cycle_job.execute_in_process(
                instance=instance, run_config=quiet, partition_key=key, raise_on_error=False
            )
        if not cycle.success:
            raise RuntimeError(
                f"simulated day {day}: the cycle failed: {cycle.get_step_failure_events()[:1]}"
            )
        plan = cycle.asset_materializations_for_node("rebalance_plan")[-1].metadata
        checks = cycle.get_asset_check_evaluations()
        decision = gate_request(instance, cursor)
        requests = [] if isinstance(decision, dg.SkipReason) else list(decision.run_requests)
        if not isinstance(decision, dg.SkipReason) and decision.cursor:
            cursor = decision.cursor
        executed = []
        for request in requests:
            run = execution_job.execute_in_process(
                instance=instance,
                run_config={**(request.run_config or {}), **quiet},
                tags=request.tags,
                raise_on_error=False,
            )
            executed.append(_outcome(run))
        record = DayRecord(
            day=day,
            as_of=str(plan["as_of"].value),
            plan_id=str(plan["plan_id"].value),
            moves=int(plan["moves"].value),
            pauses=int(plan["pauses"].value),
            checks_passed=all(c.passed for c in checks),
            executions=executed,
            seconds=time.perf_counter() - day_started,
        )
        outcome.days.append(record)
        if on_day is not None:
            on_day(record)
        _advance(inputs, 24)
    outcome.changes = _state(inputs)["changes"]
    con = duckdb.connect(str(inputs.db_path), read_only=True)
    try:
        outcome.action_log = con.sql("SELECT * FROM action_log").pl()
    finally:
        con.close()
    outcome.seconds = time.perf_counter() - started
    return outcome
