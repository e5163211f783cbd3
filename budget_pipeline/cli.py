"""The ``budget-pipeline`` command."""

from __future__ import annotations

import contextlib
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
    from budget_pipeline.preflight import DAGSTER_YAML_HEADER as _DAGSTER_YAML_HEADER
    from budget_pipeline.preflight import dagster_home

    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if not source.is_file():
        raise typer.BadParameter(f"dagster.yaml not found next to the package ({source})")
    # Copy it on first use, and refresh a copy this project made earlier (its first line says
    # so) when the project's settings changed; a dagster.yaml of the user's own is left alone.
    ours = target.exists() and target.read_text().startswith(_DAGSTER_YAML_HEADER)
    if not target.exists() or (ours and target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _account_option(what: str):
    return typer.Option(
        None,
        "--account",
        metavar="NAME",
        help=f"{what} (with an accounts file, BUDGET_PIPELINE_ACCOUNTS: required)",
    )


@app.command()
def run(
    days: int = typer.Option(
        0, help="Only the newest N daily partitions (0 = the whole history)", min=0
    ),
    execute: bool = typer.Option(
        True, help="Let the execution gate run budget_execution if every check passed"
    ),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also print Dagster's full log (always kept in a file)"
    ),
    account: str = _account_option("The ad account of the accounts file to run"),
) -> None:
    """Backfill Insights as one run, make a plan with its blocking checks, then pass the gate.

    Runs in process against the Dagster instance in $DAGSTER_HOME, so every run shows up in
    the UI afterwards (`budget-pipeline dev`). Dagster's log goes to
    $DAGSTER_HOME/logs/budget-pipeline.log; the terminal gets one line per stage.
    """
    from budget_pipeline.preflight import preflight_or_exit

    started = time.perf_counter()
    inputs = preflight_or_exit(account=account)  # bad input: one message, exit 2, nothing written
    home = ensure_dagster_home()
    _quiet_warnings(verbose)
    from budget_pipeline.cli_run import run_pipeline, stop_on_signals

    with stop_on_signals():
        code = run_pipeline(
            home, days=days, execute=execute, verbose=verbose, account=inputs.account
        )
    typer.echo(f"done in {time.perf_counter() - started:.1f} s")
    raise typer.Exit(code)


def _quiet_warnings(verbose: bool) -> None:
    if not verbose:
        import warnings

        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)


bench_app = typer.Typer(help="Benchmarks: speed (the default) and decision quality.")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 or s > 1_000_000 for s in sizes):
        raise typer.BadParameter(
            f"expected ad-set counts separated by commas, e.g. 40,1000,10000; got {text!r}",
            param_hint="--sizes",
        )
    return sizes


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    sizes: str = typer.Option(
        "40,1000,10000",
        help="Ad-set counts of the curve (the default account copied size/40 times); the 10k "
        "point takes minutes",
    ),
    scale: int | None = typer.Option(
        None, help="Shorthand for --sizes 40,40*SCALE (the default account and SCALE copies)", min=2
    ),
    plan_adsets: int = typer.Option(
        100_000, help="Ad sets of the planner-alone point (0 skips it)", min=0
    ),
    plan_pools: int = typer.Option(1_000, help="Pools of the planner-alone point", min=1),
    naive: bool = typer.Option(True, help="Time the naive pandas reference (needs pandas)"),
    simulate_days: int = typer.Option(
        21, help="Days of `simulate` on the default scenario, timed (0 skips it)", min=0, max=365
    ),
) -> None:
    """The scale curve in one run: cycle times, peak RSS, the decision steps against the
    one-pass DuckDB floor and a naive pandas reference, and the planner alone (ratios).

    `budget-pipeline bench decisions` measures decision quality instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from budget_pipeline.bench import run_curve

    chosen = [40, 40 * scale] if scale is not None else _sizes(sizes)

    def progress(line: str) -> None:
        typer.echo(f"  ... {line}", err=True)

    try:
        report = run_curve(
            chosen,
            plan_adsets=plan_adsets,
            plan_pools=plan_pools,
            naive=naive,
            simulate_days=simulate_days,
            progress=progress,
        )
    except RuntimeError as exc:  # a measured step failed: its own error, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(report)


from budget_pipeline.cli_simulate import bench_decisions, simulate  # noqa: E402

app.add_typer(bench_app, name="bench")
app.command()(simulate)
bench_app.command("decisions")(bench_decisions)


@app.command()
def dev(
    port: int = typer.Option(3000, help="Port of the UI on 127.0.0.1"),
) -> None:
    """Serve the Dagster UI on loopback (`dagster dev` with this project's DAGSTER_HOME).

    With an accounts file (BUDGET_PIPELINE_ACCOUNTS) every account is its own code location,
    listed in $DAGSTER_HOME/workspace.yaml (written here)."""
    home = ensure_dagster_home()
    target = ["-m", "budget_pipeline.definitions"]
    workspace = _accounts_workspace(home)
    if workspace is not None:
        target = ["-w", str(workspace)]
    cmd = [
        sys.executable, "-m", "dagster", "dev",
        *target, "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    typer.echo(" ".join(cmd))
    proc = subprocess.Popen(cmd, start_new_session=True)
    stopping: dict[str, int] = {}

    def stop(signum, frame):
        stopping.setdefault("signum", signum)
        raise KeyboardInterrupt

    handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        signum = stopping.get("signum", signal.SIGINT)
        code = 128 + int(signum)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    raise typer.Exit(code)


def _accounts_workspace(home: Path) -> Path | None:
    """With an accounts file: validate it (exit 2 naming field and value) and write a workspace
    with one code location per account; None without one."""
    from budget_pipeline.config.accounts import ACCOUNTS_ENV, accounts_path, load_accounts
    from budget_pipeline.config.loading import ConfigError
    from budget_pipeline.locations import workspace_yaml

    path = accounts_path()
    if path is None:
        return None
    try:
        names = list(load_accounts(path))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    os.environ[ACCOUNTS_ENV] = str(path)  # absolute: the code servers start elsewhere
    workspace = home / "workspace.yaml"
    workspace.write_text(workspace_yaml(names, Path.cwd()))
    typer.echo(f"accounts: {', '.join(names)} (one code location each, {workspace})")
    return workspace


def _stop_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop `dagster dev` and everything it started (webserver, daemon, code server): SIGTERM to
    its process group, then SIGKILL what is left after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # any process of the group still alive?
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@app.command()
def check(
    account: str = typer.Option(
        None, "--account", metavar="NAME", help="Only this account of the accounts file"
    ),
) -> None:
    """Validate the pools file, the scenario (or the META_* settings) and BUDGET_PIPELINE_DB,
    as `run` does before it starts; run and write nothing. Exit code 2 names what is wrong.

    With an accounts file (BUDGET_PIPELINE_ACCOUNTS): the file and every account in it (or
    the one --account names)."""
    from budget_pipeline.config.loading import ConfigError
    from budget_pipeline.preflight import preflight_accounts, preflight_or_exit

    if account is None:
        try:
            every = preflight_accounts()
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        if every:
            for inputs in every:
                typer.echo(inputs.describe())
            typer.echo(f"ok: {len(every)} account(s), a run of each can start")
            return
    typer.echo(preflight_or_exit(account=account).describe())
    typer.echo("ok: a run can start")


@app.command()
def rollback(
    plan_id: str = typer.Argument(..., help="The executed plan to set back (its plan_id)"),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also print Dagster's full log (always kept in a file)"
    ),
    account: str = _account_option("The ad account of the accounts file the plan is of"),
) -> None:
    """Set an executed plan's budgets back to their before-values (budget_rollback_job).

    Same guards, ledger and read-back-before-write as execution: a rerun after a crash sends
    nothing twice, and a budget someone else changed since is skipped and reported.
    """
    from budget_pipeline.preflight import preflight_or_exit

    inputs = preflight_or_exit(account=account)
    home = ensure_dagster_home()
    _quiet_warnings(verbose)
    from budget_pipeline.cli_rollback import run_rollback
    from budget_pipeline.cli_run import stop_on_signals

    with stop_on_signals():
        code = run_rollback(home, plan_id, verbose=verbose, account=inputs.account)
    raise typer.Exit(code)


@app.command()
def rollup(
    account: str = _account_option("The ad account of the accounts file whose warehouse to use"),
) -> None:
    """Rebuild `insights_daily`, the per-day rollup the decisions read, from the hourly
    `insights` table, in one transaction.

    The insights asset keeps it in step by itself. Run this after editing `insights` by hand
    (or loading rows into it another way): the decisions refuse hours the rollup lacks,
    naming the dates, but cannot see a value changed in place.
    """
    import duckdb

    from budget_pipeline.insights_rollup import rebuild
    from budget_pipeline.preflight import preflight_or_exit

    inputs = preflight_or_exit(account=account)
    if not inputs.db_path.is_file():
        typer.echo(f"error: no warehouse at {inputs.db_path}: nothing to roll up", err=True)
        raise typer.Exit(code=2)
    try:
        days, rows = rebuild(inputs.db_path)
    except duckdb.IOException as exc:  # another process holds the file (one writer)
        typer.echo(f"error: cannot open {inputs.db_path} for writing: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"insights_daily rebuilt: {days:,} day(s), {rows:,} hourly rows ({inputs.db_path})")


from budget_pipeline.cli_rules import rules_app  # noqa: E402

app.add_typer(rules_app, name="rules")


if __name__ == "__main__":
    app()
