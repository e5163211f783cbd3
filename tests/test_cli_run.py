"""The README's main command, as a user runs it: a real process, a fresh DAGSTER_HOME."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml
from cli_helpers import CLI, run_cli

from budget_pipeline.bench import scaled_inputs
from budget_pipeline.config.pools import load_pools
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.sources.simulated import load_scenario


@pytest.mark.slow
def test_run_backfills_plans_checks_and_passes_the_gate_once(tmp_path):
    first = run_cli(tmp_path, "run", "--days", "35")
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "cycle: 35 days" in out
    assert f"checks: {len(GUARDS)} of {len(GUARDS)} passed" in out and "FAILED" not in out
    assert "DEBUG" not in first.stderr and "BetaWarning" not in first.stderr  # log in a file
    assert re.search(r"^  ok    rebalance_plan \(", out, re.M)  # a progress line per stage
    plan_id = re.search(r"plan (plan-\S+):", out).group(1)
    assert re.search(r"execution run \S+ succeeded \(run key " + re.escape(plan_id), out)
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        days = con.execute("SELECT count(DISTINCT date) FROM insights").fetchall()[0][0]
        logged = con.execute(
            "SELECT count(*) FROM action_log WHERE plan_id = ?", [plan_id]
        ).fetchall()
    finally:
        con.close()
    assert days == 35 + 2  # plus the two re-pulled days before the first partition
    assert logged[0][0] > 0

    second = run_cli(tmp_path, "run", "--days", "35")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"plan {plan_id}:" in second.stdout  # same data, same plan id
    assert "execution gate closed" in second.stdout and "already has execution run" in second.stdout


def test_bench_scales_the_default_account_and_its_pools(tmp_path):
    scenario_path, pools_path = scaled_inputs(3, tmp_path)
    scenario = load_scenario(scenario_path)
    base = load_scenario(
        Path(__file__).parents[1] / "budget_pipeline/sources/simulated/scenarios/default.yaml"
    )
    assert len(list(scenario.iter_adsets())) == 3 * len(list(base.iter_adsets()))
    pools = load_pools(pools_path)
    original = yaml.safe_load(Path(pools_path).read_text())
    assert pools.by_name["prospecting"].ceiling == original["pools"][1]["ceiling"]
    assert pools.floor_minor("retargeting") == 3 * 200 * 100


def test_run_with_bad_input_exits_2_naming_it_and_writes_nothing(tmp_path):
    pools = tmp_path / "pools.yaml"
    pools.write_text("currency: EUR\nsettings:\n  kill_switch: true\n  kill_switch: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env |= {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb"), "BUDGET_PIPELINE_POOLS": str(pools)}
    done = subprocess.run(
        [CLI, "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "duplicate key 'kill_switch' on line 4" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pools.yaml"]  # no warehouse, no home
