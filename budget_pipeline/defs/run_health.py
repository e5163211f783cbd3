"""Runs whose process died: detected, marked failed, and their concurrency slots freed.

A run killed with ``kill -9`` (or a machine that lost power) stays STARTED in Dagster's run
storage and keeps its slot of the ``duckdb_write`` pool for ever: every later run then waits on
that slot. Dagster's run monitoring cannot see it for runs executed in process (the CLI) or by
the default run launcher, which has no worker health check. This module can: every Dagster
event records the pid of the process that wrote it, so a STARTING/STARTED/CANCELING run whose
process no longer exists on this machine is dead. It is reported failed (with the reason) and
its slots are freed; the execution gate then finishes or rolls back its plan.

A run killed before it started (between its creation and RUN_START: NOT_STARTED or
STARTING) has no such event: runs launched from this package (the CLI, the runner) carry
the launcher's pid in :data:`PID_TAG`, and the run is dead once that process is gone. A slot
still held by a run that has ended (a run force-terminated from the UI after its process
died) is freed too (:func:`free_dead_holders`).

Only runs of this machine are judged: the instance's run storage must be local (SQLite under
``DAGSTER_HOME``) or the run must carry this host's name in :data:`HOST_TAG`. In a multi-host
deployment (``deploy/``) the run launcher's own monitoring does the same job.

Each ad account's reaper judges its own runs only (:class:`~budget_pipeline.defs.scope.
AccountScope`: its account tag; a run naming no account is anybody's), and frees the slots of
its own pool.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from budget_pipeline.defs.constants import DUCKDB_POOL
from budget_pipeline.defs.scope import AccountScope, owns_run, repository_scope

HOST_TAG = "budget_pipeline/host"
PID_TAG = "budget_pipeline/launcher_pid"  # the process that created the run (in process: runs it)
_ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def host_tags() -> dict[str, str]:
    """Tags for a run launched from this process (so other processes can judge it)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


@dataclass(frozen=True)
class RunProcess:
    run_id: str
    job_name: str
    status: str
    pid: int | None
    alive: bool
    started: float | None  # run start, epoch seconds
    ended: bool = False  # the run has finished (its slot should have been freed)

    def describe(self) -> str:
        where = f"pid {self.pid}" if self.pid else "no pid recorded"
        return f"run {self.run_id} ({self.job_name}, {self.status}, {where})"


def _run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the run worker: the process that reported the run started (the launcher
    that created the run may be another, long-lived process); before RUN_START, the pid of
    the process that created it, when it said so (:data:`PID_TAG`)."""
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    event = records[0].event_log_entry.dagster_event if records else None
    if event is not None and event.pid:
        return int(event.pid)
    tagged = run.tags.get(PID_TAG, "")
    return int(tagged) if tagged.isdigit() else None


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where /proc is absent."""
    boot = _boot_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if boot is None:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float | None = None) -> bool:
    """Is ``pid`` a live process that started no later than ``since`` (not a reused pid)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    started = _process_start(pid)
    return not (since is not None and started is not None and started > since + 5)


def _judged_here(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    host = run.tags.get(HOST_TAG)
    if host is not None:
        return host == socket.gethostname()
    return type(instance.run_storage).__name__.startswith("Sqlite")


def active_runs(
    instance: dg.DagsterInstance, scope: AccountScope | None = None
) -> list[RunProcess]:
    """The account's runs in progress on this machine, with their process and whether it is
    alive."""
    out = []
    records = instance.get_run_records(dg.RunsFilter(statuses=_ACTIVE), limit=200)
    for record in records:
        run = record.dagster_run
        if not _judged_here(instance, run) or not owns_run(scope, run):
            continue
        pid = _run_pid(instance, run)
        started = record.start_time or record.create_timestamp.timestamp()
        alive = pid is None or pid == os.getpid() or process_alive(pid, started)
        out.append(RunProcess(run.run_id, run.job_name, run.status.value, pid, alive, started))
    return out


def reap_dead_runs(
    instance: dg.DagsterInstance, scope: AccountScope | None = None
) -> list[RunProcess]:
    """Mark every dead run of the account failed and free its slots; returns them."""
    dead = [r for r in active_runs(instance, scope) if not r.alive]
    for proc in dead:
        run = instance.get_run_by_id(proc.run_id)
        if run is None or run.is_finished:
            continue
        instance.report_run_failed(
            run,
            f"the run's process (pid {proc.pid}) is gone: it was killed or crashed without "
            "ending the run. Marked failed and its concurrency slots freed; an unfinished plan "
            "is finished or rolled back by the execution gate.",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(proc.run_id)
    return dead


def pool_holders(instance: dg.DagsterInstance, pool: str = DUCKDB_POOL) -> list[RunProcess]:
    """The runs holding a slot of ``pool`` (with their process), other than this process's."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        return []
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = []
    for run_id in sorted(info.active_run_ids):
        record = instance.get_run_record_by_id(run_id)
        if record is None:
            continue
        pid = _run_pid(instance, record.dagster_run)
        if pid == os.getpid():
            continue
        started = record.start_time or record.create_timestamp.timestamp()
        alive = (
            pid is None
            or process_alive(pid, started)
            or not _judged_here(instance, record.dagster_run)
        )
        holders.append(
            RunProcess(
                run_id, record.dagster_run.job_name, record.dagster_run.status.value, pid, alive,
                started, ended=record.dagster_run.is_finished,
            )
        )  # fmt: skip
    return holders


def free_dead_holders(instance: dg.DagsterInstance, pool: str = DUCKDB_POOL) -> list[RunProcess]:
    """Free the slots of ``pool`` held by a run that has ended (e.g. force-terminated from the
    UI after its process died: Dagster frees those only in the daemon's run monitoring) or
    whose process is gone (marked failed first). Returns them."""
    freed = []
    for proc in pool_holders(instance, pool):
        if proc.alive and not proc.ended:
            continue
        run = instance.get_run_by_id(proc.run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run,
                f"the run's process (pid {proc.pid}) is gone while it held the {pool} slot: "
                "marked failed and its slots freed",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(proc.run_id)
        freed.append(proc)
    return freed


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks runs whose process died (kill -9, a crash) as failed and frees their "
        "duckdb_write slot, so later runs never wait for ever; the execution gate then "
        "finishes or rolls back their plan."
    ),
)
def dead_run_reaper(context: dg.SensorEvaluationContext):
    dead = reap_dead_runs(context.instance, repository_scope(context))
    if not dead:
        return dg.SkipReason("no dead run")
    for proc in dead:
        context.log.warning(f"{proc.describe()}: process gone; marked failed, slots freed")
    return dg.SkipReason(f"marked {len(dead)} dead run(s) failed and freed their slots")
