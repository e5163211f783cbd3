"""The ``budget-pipeline`` command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Move Meta ads budget between campaigns, safely.")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME (default ./.dagster_home) and put the project's dagster.yaml in it."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        source = PROJECT_ROOT / "dagster.yaml"
        if not source.is_file():
            raise typer.BadParameter(f"dagster.yaml not found next to the package ({source})")
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@app.command()
def run(
    days: int = typer.Option(
        0, help="Only the newest N daily partitions (0 = the whole history)", min=0
    ),
    execute: bool = typer.Option(
        True, help="Let the execution gate run budget_execution if every check passed"
    ),
) -> None:
    """Backfill Insights as one run, make a plan with its blocking checks, then pass the gate.

    Runs in process against the Dagster instance in $DAGSTER_HOME, so every run shows up in
    the UI afterwards (`budget-pipeline dev`).
    """
    home = ensure_dagster_home()
    started = time.perf_counter()
    import dagster as dg

    from budget_pipeline import settings
    from budget_pipeline.definitions import defs
    from budget_pipeline.defs.execution.sensors import gate_request
    from budget_pipeline.defs.partitions import daily_partitions

    instance = dg.DagsterInstance.get()
    keys = daily_partitions.get_partition_keys()
    if days:
        keys = keys[-days:]
    if not keys:
        typer.echo("no partitions to run", err=True)
        raise typer.Exit(2)
    typer.echo(f"DAGSTER_HOME={home}\nwarehouse: {settings.db_path()}")
    typer.echo(f"cycle: {len(keys)} daily partitions {keys[0]} .. {keys[-1]} in one run")
    cycle = defs.resolve_job_def("budget_cycle_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
        raise_on_error=False,
    )
    _report_checks(cycle)
    if not cycle.success:
        typer.echo(
            f"cycle run {cycle.run_id} FAILED; see `budget-pipeline dev` for details", err=True
        )
        raise typer.Exit(1)
    plan = cycle.asset_materializations_for_node("rebalance_plan")
    if plan:
        meta = plan[-1].metadata
        typer.echo(
            f"plan {meta['plan_id'].value}: {meta['moves'].value} moves, "
            f"{meta['pauses'].value} pauses, money moved {meta['money_moved'].value}"
        )
    if execute:
        decision = gate_request(instance, None)
        if isinstance(decision, dg.SkipReason) or not decision.run_requests:
            skip = decision if isinstance(decision, dg.SkipReason) else decision.skip_reason
            typer.echo(f"execution gate closed: {skip.skip_message if skip else 'no run'}")
        else:
            request = decision.run_requests[0]
            exe = defs.resolve_job_def("budget_execution_job").execute_in_process(
                instance=instance,
                run_config=request.run_config,
                tags=request.tags,
                raise_on_error=False,
            )
            status = "succeeded" if exe.success else "FAILED"
            typer.echo(f"execution run {exe.run_id} {status} (run key {request.run_key})")
            for mat in exe.asset_materializations_for_node("budget_execution"):
                if mat.asset_key != dg.AssetKey("budget_execution"):
                    continue  # the multi-asset's other output, action_log
                m = mat.metadata
                typer.echo(
                    f"  observed {m['observed'].value}, applied {m['applied'].value}, "
                    f"skipped {m['skipped'].value}, failed {m['failed'].value}"
                )
            if not exe.success:
                raise typer.Exit(1)
    typer.echo(f"done in {time.perf_counter() - started:.1f} s")


def _report_checks(result) -> None:
    for evaluation in result.get_asset_check_evaluations():
        mark = "passed" if evaluation.passed else "FAILED"
        typer.echo(f"  check {evaluation.check_name}: {mark}")


@app.command()
def bench(
    scale: int = typer.Option(5, help="How many copies of the default account to compare", min=2),
) -> None:
    """Time the pipeline on the default account and on one SCALE times larger (ratios)."""
    from budget_pipeline.bench import run_bench

    typer.echo(run_bench(scale))


@app.command()
def dev(
    port: int = typer.Option(3000, help="Port of the UI on 127.0.0.1"),
) -> None:
    """Serve the Dagster UI on loopback (`dagster dev` with this project's DAGSTER_HOME)."""
    ensure_dagster_home()
    cmd = [
        sys.executable, "-m", "dagster", "dev",
        "-m", "budget_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    typer.echo(" ".join(cmd))
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        raise typer.Exit(130) from None


@app.command()
def check() -> None:
    """Validate the pools file, the scenario (or the META_* settings) and BUDGET_PIPELINE_DB,
    as `run` does before it starts; run and write nothing. Exit code 2 names what is wrong."""
    from budget_pipeline.preflight import preflight_or_exit

    typer.echo(preflight_or_exit().describe())
    typer.echo("ok: a run can start")


from budget_pipeline.cli_rules import rules_app  # noqa: E402

app.add_typer(rules_app, name="rules")


if __name__ == "__main__":
    app()
