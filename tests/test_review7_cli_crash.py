"""Review of issue 7 §3: kill -9 of `budget-pipeline run` mid-plan, then plain reruns (real
processes, real DAGSTER_HOME, live writes over HTTP to the Graph API double). Fails on 45c7321.

The killed run's completed writes are 'applied' in the ledger, but their action_log rows were
only buffered in memory (written at the end of the pass), so they are lost with the process:
the append-only log misses real API calls, and the min-interval guard (which reads the action
log) lets the next cycle move the same ad sets again minutes later.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import duckdb
import pytest
from live_helpers import TOKEN, budget_posts
from test_cli_crash import CLI, SCENARIO, _env

from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.simulated import SimulatedAccount

THIRD_WRITE = "120210000011002"  # donor, then two recipients: the 3rd POST hangs


@pytest.mark.slow
def test_writes_made_by_a_killed_run_are_logged_and_not_repeated_by_the_next_cycles(tmp_path):
    account = SimulatedAccount(SCENARIO)
    with serve_double(account, token=TOKEN) as double:
        env = _env(tmp_path, double)
        double.faults.push({"match": f"POST /v25.0/{THIRD_WRITE}", "delay": 60.0})
        first = subprocess.Popen(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while len(budget_posts(double)) < 3:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        landed_by_dead_run = [e for e, _ in budget_posts(double)]
        double.faults.clear()

        for _ in range(2):  # two plain reruns (or two ticks of the 30-min schedule)
            rerun = subprocess.run(  # the newest day only: the warehouse has the history
                [CLI, "run", "--days", "1"], cwd=tmp_path, env=env,
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-2000:]

        con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
        try:
            logged = {
                r[0]
                for r in con.execute(
                    "SELECT entity_id FROM action_log WHERE status = 'applied' AND mode = 'live' "
                    "AND plan_id = (SELECT plan_id FROM rebalance_plans ORDER BY created_at LIMIT 1)"
                ).fetchall()
            }
        finally:
            con.close()
        missing = [e for e in landed_by_dead_run if e not in logged]
        posts = Counter(e for e, _ in budget_posts(double))
        twice = {e: n for e, n in posts.items() if n > 1}
        assert not missing, f"writes that landed have no action_log row: {missing}"
        assert not twice, f"ad sets edited again within min_change_interval_hours=6: {twice}"


def _execution_runs(home) -> list[tuple[str, str]]:
    import sqlite3

    con = sqlite3.connect(f"file:{home}/history/runs.db?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(
            "SELECT run_id, status FROM runs WHERE pipeline_name = 'budget_execution_job' "
            "ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


@pytest.mark.slow
def test_a_rerun_killed_before_its_finishing_run_started_does_not_wedge_the_plan(tmp_path):
    """A half-applied plan (kill -9 after the donor's write); the rerun is killed again in the
    ~0.2-0.5 s between the creation of its finishing run (NOT_STARTED) and RUN_START.

    Expected: a later rerun finishes the plan. Observed: the run stays NOT_STARTED for ever
    (the reaper judges only STARTING/STARTED/CANCELING runs with a pid); the gate counts it as
    'in progress' (sensors.py _IN_PROGRESS) and never relaunches the plan: money stays lost.
    """
    home = tmp_path / ".dagster_home"
    account = SimulatedAccount(SCENARIO)
    with serve_double(account, token=TOKEN) as double:
        env = _env(tmp_path, double)
        double.faults.push({"match": "POST /v25.0/120210000010001", "delay": 60.0})
        first = subprocess.Popen([CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while len(budget_posts(double)) < 2:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        double.faults.clear()
        assert Counter(s for _, s in _execution_runs(home)) == Counter({"STARTED": 1})

        second = subprocess.Popen([CLI, "run", "--days", "1"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while not any(s == "NOT_STARTED" for _, s in _execution_runs(home)):
            assert second.poll() is None and time.monotonic() < deadline
            assert not any(s == "SUCCESS" for _, s in _execution_runs(home)), "missed the window"
            time.sleep(0.002)
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)

        third = subprocess.run([CLI, "run", "--days", "1"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
        con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
        try:
            open_steps = con.execute(
                "SELECT count(*) FROM execution_ledger "
                "WHERE state IN ('pending', 'started', 'failed', 'deferred')"
            ).fetchall()[0][0]
        finally:
            con.close()
        assert open_steps == 0, third.stdout
