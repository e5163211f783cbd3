"""Review of issue 7: `budget-pipeline run` against a warehouse slot left by an ENDED run.

A run killed with -9, then marked canceled from the UI ("Terminate" → force termination of a
run whose process is gone: ``report_run_canceled``), keeps its duckdb_write slot: Dagster frees
slots of ended runs only in the daemon's run monitoring. Fails on 45c7321.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))

HOLDER = textwrap.dedent(
    """
    import time, dagster as dg

    @dg.op(pool="duckdb_write")
    def hold():
        print("holding", flush=True)
        time.sleep(600)

    @dg.job
    def holder_job():
        hold()

    holder_job.execute_in_process(instance=dg.DagsterInstance.get())
    """
)


@pytest.mark.slow
def test_a_slot_held_by_an_ended_run_neither_hot_loops_nor_ignores_sigterm(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env["DAGSTER_HOME"] = str(home)

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "holding"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        (record,) = instance.get_run_records()
        # what the UI's force termination does for a run whose process is gone
        instance.report_run_canceled(record.dagster_run, "marked canceled from the UI")
        info = instance.event_log_storage.get_concurrency_info("duckdb_write")
        assert record.dagster_run.run_id in info.active_run_ids  # its slot is still held
    finally:
        del os.environ["DAGSTER_HOME"]

    runner = subprocess.Popen(
        [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(runner.stdout), daemon=True)
    reader.start()
    try:
        # until the cycle gets going (or the command says what it waits for), at most 20 s
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and runner.poll() is None:
            if any(("cycle:" in line or "waiting for the warehouse" in line) for line in lines):
                break
            time.sleep(0.1)
        runner.send_signal(signal.SIGTERM)
        try:
            code = runner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            runner.kill()
            reader.join(5)
            pytest.fail(
                f"`budget-pipeline run` ignored SIGTERM; it printed only:\n{''.join(lines)}"
            )
        reader.join(5)
        out = "".join(lines)
        assert code in (0, 143), out
        assert "cycle:" in out or "waiting for the warehouse" in out, out
        assert "freed the warehouse from run" in out and "it has ended" in out, out
    finally:
        if runner.poll() is None:
            runner.kill()
