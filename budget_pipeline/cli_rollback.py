"""``budget-pipeline rollback PLAN_ID``: run ``budget_rollback_job`` in process, say what it did.

The run lands in $DAGSTER_HOME like every CLI run, so the UI shows it. Exit codes: 0 the plan
is set back (or had nothing live to set back; budgets someone else changed since are skipped and
listed), 1 the guards refused it or calls failed (run it again), 2 no such plan.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import typer


def _failure(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """(error class, message) of the first failed step."""
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while (
            error is not None
            and error.cause is not None
            and error.cls_name in ("DagsterExecutionStepExecutionError",)
        ):
            error = error.cause
        if error is not None:
            # "pkg.module.UnknownPlanError: plan_id ..." -> "plan_id ..."
            return error.cls_name or "", re.sub(r"^[\w.]+: ", "", error.message.strip(), count=1)
    return "", "the rollback run failed"


def run_rollback(home: Path, plan_id: str, *, verbose: bool, account=None) -> int:
    from budget_pipeline.cli_run import _in_worker, location_defs, wait_for_warehouse
    from budget_pipeline.defs.cli_logging import cli_run_config
    from budget_pipeline.defs.rollback.job import rollback_run_config
    from budget_pipeline.defs.run_health import host_tags
    from budget_pipeline.defs.scope import resources_scope

    defs = location_defs(account)  # the plan is looked up in this account's warehouse only
    instance = dg.DagsterInstance.get()
    log_file = home / "logs" / "budget-pipeline.log"
    run_config = {**rollback_run_config(plan_id), **cli_run_config(log_file, verbose=verbose)}
    wait_for_warehouse(instance, resources_scope(defs.resources))
    result = _in_worker(
        lambda: defs.resolve_job_def("budget_rollback_job").execute_in_process(
            instance=instance, run_config=run_config, tags=host_tags(), raise_on_error=False
        )
    )
    for mat in result.asset_materializations_for_node("roll_back_plan_op"):
        meta = mat.metadata
        typer.echo(mat.description or "")
        skipped = meta["skipped"].value
        if skipped:
            typer.echo(
                f"  {skipped} budget(s) changed since by someone else were left as they are; "
                "see action_log in the UI or the entries below"
            )
        entries = meta["entries"].value
        if meta["appended"].value:
            typer.echo(entries)
    if result.success:
        typer.echo(f"rollback run {result.run_id} succeeded")
        return 0
    cls, message = _failure(result)
    typer.echo(f"rollback run {result.run_id} FAILED: {message}", err=True)
    return 2 if cls == "UnknownPlanError" else 1
