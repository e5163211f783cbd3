"""`budget-pipeline run` killed with -9 mid-execution, then a plain rerun: real processes, a
real DAGSTER_HOME, live writes over HTTP to the Graph API double.

The dead run must not wedge the warehouse (its duckdb_write slot is freed), the write it made
without recording it must be found and logged, and the started plan must be finished by the
rerun: every live pool's total ends equal to the plan's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from live_helpers import LIVE_POOLS, TOKEN, assert_plan_complete_or_rolled_back, budget_posts

from budget_pipeline.contracts import PLAN, conform
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))
SCENARIO = load_scenario(DEFAULT_SCENARIO_PATH)


# The pools file the README's live demo runs with.
README_LIVE_POOLS = (
    Path(__file__).resolve().parent.parent / "budget_pipeline/examples/pools_live_demo.yaml"
)


def _env(tmp_path: Path, double) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    last = SCENARIO.start.toordinal() + SCENARIO.days - 1
    env |= double.env() | {
        "META_ASYNC_POLL_SECONDS": "0.05",
        "BUDGET_PIPELINE_DB": str(tmp_path / "live.duckdb"),
        "BUDGET_PIPELINE_POOLS": str(LIVE_POOLS),
        "BUDGET_PIPELINE_START_DATE": SCENARIO.start.isoformat(),
        "BUDGET_PIPELINE_END_DATE": type(SCENARIO.start).fromordinal(last).isoformat(),
        "BUDGET_PIPELINE_TIMEZONE": SCENARIO.timezone,
    }
    return env


def _posts(double) -> int:
    return len(budget_posts(double))


@pytest.mark.slow
def test_kill_9_after_the_second_write_then_a_plain_rerun_finishes_the_plan(tmp_path):
    account = SimulatedAccount(SCENARIO)
    with serve_double(account, token=TOKEN) as double:
        env = _env(tmp_path, double)
        # The second budget write lands, then its reply takes a minute: the run is killed
        # while it waits, so the ledger keeps 'started' and the action log has no row.
        double.faults.push(
            {"match": "POST /v25.0/1202", "delay": 0.0},
            {"match": "POST /v25.0/1202", "delay": 60.0},
        )
        first = subprocess.Popen(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while _posts(double) < 2:
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the run never reached its second write"
            time.sleep(0.05)
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
        try:
            states = sorted(
                r[0] for r in con.execute("SELECT state FROM execution_ledger").fetchall()
            )
            plan = conform(con.sql("SELECT * FROM rebalance_plans").pl(), PLAN)
        finally:
            con.close()
        assert states.count("started") == 1 and states.count("applied") == 1, states
        with pytest.raises(AssertionError, match="money was lost or created"):
            assert_plan_complete_or_rolled_back(double, plan)  # half-applied right now

        started = time.monotonic()
        rerun = subprocess.run(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        out = rerun.stdout
        assert rerun.returncode == 0, out + rerun.stderr[-3000:]
        assert time.monotonic() - started < 120  # never blocked on the dead run's slot
        assert "its process is gone" in out, out
        assert "complete:" in out, out
        assert assert_plan_complete_or_rolled_back(double, plan) == "complete"
        # the write the dead run made is in the action log, with the account's clock
        con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
        try:
            confirmed = con.execute(
                "SELECT entity_id, effective_at FROM action_log "
                "WHERE message LIKE 'confirmed after restart%'"
            ).fetchall()
            open_rows = con.execute(
                "SELECT count(*) FROM execution_ledger "
                "WHERE state IN ('pending', 'started', 'failed', 'deferred')"
            ).fetchall()[0][0]
        finally:
            con.close()
        assert len(confirmed) == 1 and confirmed[0][1] == account.now
        assert open_rows == 0
        # every planned move reached the API exactly once
        live = plan.filter(pl.col("pool") == "testing", pl.col("delta") != 0)
        assert sorted(budget_posts(double)) == sorted(
            (r["entity_id"], str(r["new_budget"])) for r in live.iter_rows(named=True)
        )


def _read_until(proc: subprocess.Popen, text: str, timeout: float = 120) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"never printed {text!r}: {seen}"
        line = proc.stdout.readline()
        assert line or proc.poll() is None, f"exited before printing {text!r}: {seen}"
        seen += line
    return seen


@pytest.mark.slow
def test_a_run_waiting_for_the_warehouse_says_why_and_sigterm_stops_both_cleanly(tmp_path):
    account = SimulatedAccount(SCENARIO)
    with serve_double(account, token=TOKEN) as double:
        env = _env(tmp_path, double)
        double.faults.push({"match": "POST /v25.0/1202", "delay": 60.0})  # the 1st write hangs
        holder = subprocess.Popen(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while _posts(double) < 1:
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        waiter = subprocess.Popen(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        said = _read_until(waiter, "waiting for the warehouse")
        assert "held by run" in said and "budget_execution_job" in said and "Ctrl-C" in said

        waiter.send_signal(signal.SIGTERM)
        assert waiter.wait(timeout=20) == 143
        holder.send_signal(signal.SIGTERM)  # mid-call: the run ends, its slot freed
        code = holder.wait(timeout=90)
        out = holder.stdout.read()
        assert code == 143, out

        # Nothing is left holding the warehouse: a third run goes straight through and
        # finishes the plan the stopped run had started.
        third = subprocess.run(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert third.returncode == 0, third.stdout + third.stderr[-2000:]
        assert "waiting for the warehouse" not in third.stdout
        con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
        try:
            plans = conform(con.sql("SELECT * FROM rebalance_plans").pl(), PLAN)
            # the first plan made (a plan id ends in a hash: their order is not the order made)
            (first_id,) = con.execute(
                "SELECT plan_id FROM rebalance_plans ORDER BY created_at LIMIT 1"
            ).fetchone()
        finally:
            con.close()
        first_plan = plans.filter(pl.col("plan_id") == first_id)
        assert assert_plan_complete_or_rolled_back(double, first_plan) in (
            "complete",
            "rolled_back",
        )


@pytest.mark.slow
def test_the_readmes_live_demo_applies_the_moves_right_after_the_quick_start(tmp_path):
    quick = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    quick.pop("DAGSTER_HOME", None)
    first = subprocess.run(
        [CLI, "run", "--days", "35"], cwd=tmp_path, env=quick,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr[-2000:]
    assert "observed: observed 21, applied 0" in first.stdout
    with serve_double(SimulatedAccount(SCENARIO), token=TOKEN) as double:
        env = _env(tmp_path, double) | {
            "BUDGET_PIPELINE_DB": "data/live_demo.duckdb",
            "BUDGET_PIPELINE_POOLS": str(README_LIVE_POOLS),
        }
        demo = subprocess.run(
            [CLI, "run", "--days", "35"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert demo.returncode == 0, demo.stdout + demo.stderr[-2000:]
        assert "complete: observed 0, applied 21," in demo.stdout
        assert len(budget_posts(double)) == 21
