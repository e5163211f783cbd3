"""``budget-pipeline run``: the cycle, the gate and execution, in process, with short progress.

Before anything runs, runs whose process died are marked failed and their ``duckdb_write``
slot freed (see :mod:`budget_pipeline.defs.run_health`); if a live run holds the warehouse,
the command says which and waits. Ctrl-C or SIGTERM stop it cleanly: each Dagster run executes
in a worker thread (so Dagster does not take over the signals, which made a run waiting on the
pool ignore SIGTERM); on a signal the main thread gives the run a few seconds, then marks it
canceled, frees its slots and exits (130 for Ctrl-C, 143 for SIGTERM). A budget call cut short
is settled by the next run, which reads the budget back.

With ``--account`` the command runs that account of the accounts file: its code location
(:func:`~budget_pipeline.defs.accounts.account_definitions`), its warehouse and pool, and only
its plans pass its gate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import dagster as dg
import typer

STOP = threading.Event()  # set by SIGINT / SIGTERM
_SIGNAL: dict[str, int] = {}
GRACE_SECONDS = 5.0
WAIT_REPORT_SECONDS = 30.0
WAIT_POLL_SECONDS = 2.0
T = TypeVar("T")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _say(text: str) -> None:
    typer.echo(text)


def wait_for_warehouse(instance: dg.DagsterInstance, scope=None) -> None:
    """Free the slots of the account's dead or ended runs; while a live run holds its warehouse
    (the account's pool), say so and wait (never without waiting: a slot that cannot be freed
    is checked again in :data:`WAIT_POLL_SECONDS`)."""
    from budget_pipeline.defs.constants import DUCKDB_POOL
    from budget_pipeline.defs.run_health import free_dead_holders, pool_holders, reap_dead_runs

    pool = scope.pool if scope is not None else DUCKDB_POOL
    for proc in reap_dead_runs(instance, scope):
        _say(f"freed the warehouse from {proc.describe()}: its process is gone; marked failed")
    said = 0.0
    while True:
        for proc in free_dead_holders(instance, pool):
            why = "it has ended" if proc.ended else "its process is gone"
            _say(f"freed the warehouse from {proc.describe()}: {why}")
        holders = pool_holders(instance, pool)
        if not holders:
            return
        now = time.monotonic()
        if now - said >= WAIT_REPORT_SECONDS:
            said = now
            names = ", ".join(h.describe() for h in holders)
            _say(
                f"waiting for the warehouse (pool {pool}): held by {names}. It is freed "
                "when that run ends; if its process dies it is freed on the next check. "
                "Ctrl-C stops waiting; `budget-pipeline dev` shows the run."
            )
        if STOP.wait(WAIT_POLL_SECONDS):
            _stop()


def end_own_runs() -> int:
    """Mark this process's runs still in progress canceled and free their slots."""
    from budget_pipeline.defs.run_health import active_runs

    if not os.environ.get("DAGSTER_HOME"):
        return 0
    instance = dg.DagsterInstance.get()
    ended = 0
    for proc in active_runs(instance):
        if proc.pid != os.getpid():
            continue
        run = instance.get_run_by_id(proc.run_id)
        if run is None or run.is_finished:
            continue
        instance.report_run_canceled(run, "stopped by the user (Ctrl-C or SIGTERM)")
        instance.event_log_storage.free_concurrency_slots_for_run(proc.run_id)
        ended += 1
    return ended


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM set :data:`STOP`; the command then stops (see the module docstring)."""

    def on_signal(signum, frame):
        _SIGNAL.setdefault("signum", signum)
        STOP.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop() -> NoReturn:
    ended = end_own_runs()
    term = _SIGNAL.get("signum") == signal.SIGTERM
    typer.echo(
        f"stopped ({'SIGTERM' if term else 'Ctrl-C'})"
        + (f"; ended {ended} run(s) of this process and freed their slots" if ended else "")
        + "; a plan left unfinished is finished or rolled back by the next run",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(143 if term else 130)  # the worker thread may be inside a call: do not wait


def _in_worker(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread; stop cleanly if a signal arrives meanwhile."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=work, name="budget-pipeline-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        if STOP.is_set():
            worker.join(GRACE_SECONDS)
            _stop()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _report_checks(result: dg.ExecuteInProcessResult) -> None:
    evaluations = result.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    for e in evaluations:  # each check with the plan it judged
        plan = e.metadata.get("plan_id")
        on = f" (plan {plan.value})" if plan is not None else ""
        _say(f"  check {e.check_name}: {'passed' if e.passed else 'FAILED'}{on}")
    if evaluations:
        _say(
            f"checks: {len(evaluations) - len(failed)} of {len(evaluations)} passed"
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
        )


def location_defs(account=None) -> dg.Definitions:
    """The code location the command runs: ``account``'s, or the single account's."""
    if account is None:
        from budget_pipeline.definitions import defs

        return defs
    from budget_pipeline.defs.accounts import account_definitions

    return account_definitions(account)


def run_pipeline(home: Path, *, days: int, execute: bool, verbose: bool, account=None) -> int:
    from budget_pipeline import runner
    from budget_pipeline.defs.cli_logging import cli_run_config
    from budget_pipeline.defs.execution.sensors import gate_request
    from budget_pipeline.defs.run_health import host_tags
    from budget_pipeline.defs.scope import resources_scope

    defs = location_defs(account)
    scope = resources_scope(defs.resources)
    instance = dg.DagsterInstance.get()
    keys = runner.partition_keys(days, defs=defs)
    if not keys:
        typer.echo("no partitions to run", err=True)
        return 2
    log_file = home / "logs" / "budget-pipeline.log"
    run_config = cli_run_config(log_file, verbose=verbose)
    named = f"account: {account.name} ({scope.account_id})\n" if account is not None else ""
    warehouse = defs.resources["warehouse"].database
    _say(f"{named}DAGSTER_HOME={home}\nwarehouse: {warehouse}\nlog: {log_file}")
    wait_for_warehouse(instance, scope)
    _say(f"cycle: {_count(len(keys), 'day')}, daily partitions {keys[0]} .. {keys[-1]} in one run")
    cycle = _in_worker(
        lambda: defs.resolve_job_def("budget_cycle_job").execute_in_process(
            instance=instance,
            run_config=run_config,
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
                **host_tags(),
            },
            raise_on_error=False,
        )
    )
    _report_checks(cycle)
    if not cycle.success:
        typer.echo(f"cycle run {cycle.run_id} FAILED; details in {log_file}", err=True)
        return 1
    plan = cycle.asset_materializations_for_node("rebalance_plan")
    if plan:
        meta = plan[-1].metadata
        moves, pauses = meta["moves"].value, meta["pauses"].value
        _say(
            f"plan {meta['plan_id'].value}: {_count(moves, 'budget change')}, "
            f"{_count(pauses, 'pause')}, money moved {meta['money_moved'].value}"
        )
    if not execute:
        return 0
    # An explicit run tries an unfinished plan now (no backoff), unless it would only be held.
    pools = defs.resources["pools"].load()  # preflight validated it
    decision = gate_request(instance, None, pools=pools, backoff=False, scope=scope)
    requests = [] if isinstance(decision, dg.SkipReason) else list(decision.run_requests or [])
    if not requests:
        skip = decision if isinstance(decision, dg.SkipReason) else decision.skip_reason
        _say(f"execution gate closed: {skip.skip_message if skip else 'no run'}")
    ok = True
    for request in requests:
        wait_for_warehouse(instance, scope)
        exe = _in_worker(
            lambda request=request: defs.resolve_job_def("budget_execution_job").execute_in_process(
                instance=instance,
                run_config={**(request.run_config or {}), **run_config},
                tags={**request.tags, **host_tags()},
                raise_on_error=False,
            )
        )
        ok = ok and exe.success
        status = "succeeded" if exe.success else "FAILED"
        _say(f"execution run {exe.run_id} {status} (run key {request.run_key})")
        for mat in exe.asset_materializations_for_node("budget_execution"):
            if mat.asset_key.path[-1] != "budget_execution":
                continue  # the multi-asset's other output, action_log (under an account's prefix)
            m = mat.metadata
            _say(
                f"  {m['outcome'].value}: observed {m['observed'].value}, applied "
                f"{m['applied'].value}, skipped {m['skipped'].value}, deferred "
                f"{m['deferred'].value}, failed {m['failed'].value}, rolled back "
                f"{m['rolled_back'].value}"
            )
    return 0 if ok else 1
