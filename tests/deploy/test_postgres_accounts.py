"""Two ad accounts of one accounts file running at once, each in its own process (as the run
launcher starts them), against a real PostgreSQL as Dagster's storage (deploy/dagster.yaml):
neither waits on the other's DuckDB writer, each account's checks and gate read its own plan
from Postgres, and what they leave in Postgres is attributed to each account.

Processes, not threads: Dagster (re)configures Python's logging each time a run starts, which
can deadlock against another thread's run logging in the same process; deployed runs never
share a process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from accounts_helpers import ACCOUNT_IDS, K8S_CONFIG, write_accounts
from postgres_helpers import plan_ids_checked, query

from budget_pipeline.config.accounts import load_accounts
from budget_pipeline.defs.accounts import account_definitions
from budget_pipeline.defs.constants import ACCOUNT_TAG, PLAN_ID_TAG
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.execution.gate import plan_gate
from budget_pipeline.defs.execution.sensors import execution_gate
from budget_pipeline.defs.scope import resources_scope

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))
DAYS = 35  # per account: enough history for scores, so each plan moves money


def test_two_accounts_run_at_once_each_on_its_own_pool(deploy_home, deploy_instance, pg, tmp_path):
    instance = deploy_instance
    # The schema exists before the workers start, as the Helm chart's migration job does.
    assert instance.get_runs() == []
    accounts_file = write_accounts(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env |= pg.env() | {"DAGSTER_HOME": str(deploy_home), "BUDGET_PIPELINE_ACCOUNTS": str(accounts_file)}  # fmt: skip
    procs = {
        name: subprocess.Popen(
            [CLI, "run", "--account", name, "--days", str(DAYS)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ACCOUNT_IDS
    }
    outputs = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"account {name}:\n{out}\n{err[-3000:]}"
        outputs[name] = out
    # each account's own history (shop_at's ends a week later) in its own warehouse
    ranges = {
        n: re.search(r"daily partitions (\S+) \.\. (\S+) in one run", o).groups()
        for n, o in outputs.items()
    }
    assert ranges == {"shop_de": ("2026-09-26", "2026-10-30"), "shop_at": ("2026-10-03", "2026-11-06")}  # fmt: skip
    for name in ACCOUNT_IDS:
        assert (tmp_path / "data" / f"{name}.duckdb").is_file()
        assert f"warehouse: {tmp_path / 'data' / name}.duckdb" in outputs[name]

    # Postgres holds each account's cycle run and execution run, tagged with its ad account...
    tagged = query(
        pg,
        "SELECT t.value, r.pipeline_name, r.run_id, r.status, r.start_time, r.end_time "
        "FROM runs r JOIN run_tags t ON t.run_id = r.run_id AND t.key = %s",
        (ACCOUNT_TAG,),
    )
    assert sorted((v, job, status) for v, job, _, status, _, _ in tagged) == sorted(
        (ACCOUNT_IDS[n], job, "SUCCESS")
        for n in ACCOUNT_IDS
        for job in ("budget_cycle_job", "budget_execution_job")
    )
    runs = {(v, job): (run_id, s, e) for v, job, run_id, _, s, e in tagged}
    cycles = {n: runs[(a, "budget_cycle_job")] for n, a in ACCOUNT_IDS.items()}
    executions = {n: runs[(a, "budget_execution_job")][0] for n, a in ACCOUNT_IDS.items()}
    # shop_at's runs carry its warehouse volume for the K8sRunLauncher (its run_tags); shop_de's not
    volumes = query(pg, "SELECT run_id, value FROM run_tags WHERE key = 'dagster-k8s/config'")
    shop_at = {runs[(ACCOUNT_IDS["shop_at"], job)][0] for job in ("budget_cycle_job", "budget_execution_job")}  # fmt: skip
    assert sorted(volumes) == sorted((run_id, json.dumps(K8S_CONFIG)) for run_id in shop_at)
    # ...the two cycles in progress at the same time...
    assert max(s for _, s, _ in cycles.values()) < min(e for _, _, e in cycles.values())
    # ...and no DuckDB step of either waited: each account's writers take turns on its own pool.
    for run_id, *_ in runs.values():
        assert [
            e.message
            for e in instance.all_logs(run_id)
            if "blocked by limit for pool" in (e.message or "")
        ] == []
    pools = dict(query(pg, 'SELECT concurrency_key, "limit" FROM concurrency_limits'))
    assert pools == {"duckdb_write.shop_de": 1, "duckdb_write.shop_at": 1}
    held = query(pg, "SELECT concurrency_key FROM concurrency_slots WHERE run_id IS NOT NULL")
    assert held == []  # no finished run still holds a slot

    # Each account's checks judged its own plan, its execution ran that plan, and its gate,
    # reading Postgres, finds that plan done and nothing of the other account's.
    locations = {
        name: account_definitions(a) for name, a in load_accounts(accounts_file, env={}).items()
    }
    plans = {}
    for name, defs in locations.items():
        gate = plan_gate(instance, scope=resources_scope(defs.resources))
        assert gate.open and gate.storage_id is not None
        assert plan_ids_checked(instance, cycles[name][0]) == {gate.plan_id}
        assert f"plan {gate.plan_id}:" in outputs[name]
        assert outputs[name].count(": passed") == len(GUARDS)
        assert (
            f"execution run {executions[name]} succeeded (run key {gate.plan_id})" in outputs[name]
        )
        execution = instance.get_run_by_id(executions[name])
        assert execution.tags[PLAN_ID_TAG] == gate.plan_id
        assert re.search(r"observed [1-9]", outputs[name])  # the plan moved money (observe mode)
        plans[name] = gate.plan_id
    assert plans["shop_de"] != plans["shop_at"]
    for name, defs in locations.items():
        other = plans["shop_at" if name == "shop_de" else "shop_de"]
        context = dg.build_sensor_context(
            instance=instance, repository_def=defs.get_repository_def(), resources=defs.resources
        )
        tick = execution_gate(context)
        said = (
            tick.skip_reason.skip_message
            if isinstance(tick, dg.SensorResult)
            else tick.skip_message
        )
        assert not getattr(tick, "run_requests", None)
        assert f"plan {plans[name]} already has execution run {executions[name]}" in said
        assert other not in said
