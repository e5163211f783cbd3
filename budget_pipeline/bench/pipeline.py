"""One size of the scale curve, in its own process (so its peak RSS is its own): the whole
pipeline through the real Dagster machinery on the default account copied N times.

``python -m budget_pipeline.bench.pipeline FOLDER`` reads ``FOLDER/scenario.yaml`` and
``FOLDER/pools.yaml``, writes ``FOLDER/warehouse.duckdb`` and prints one JSON object: seconds
per phase, rows, the plan's metadata size and the process's peak RSS. The environment must
name the scenario and pools (``BUDGET_PIPELINE_SCENARIO``/``_POOLS``) and let the clock run
one day past the history (``BUDGET_PIPELINE_SIMULATE_DAYS=1``), as :mod:`.curve` sets it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

# the copy of the warehouse the decision steps are timed on (see measure)
DECIDED_COPY = "decided.duckdb"

IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import budget_pipeline.definitions; "
    "print(time.perf_counter() - t)"
)


def import_seconds(env: dict[str, str]) -> float:
    """Seconds a freshly launched run process spends importing the code location."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing the definitions failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _metadata_bytes(result, node: str) -> int:
    mats = result.asset_materializations_for_node(node)
    return sum(len(json.dumps({k: str(v.value) for k, v in m.metadata.items()})) for m in mats)


def _check(result, what: str):
    if not result.success:
        raise RuntimeError(f"{what} failed: {result.get_step_failure_events()}")
    return result


def measure(folder: Path) -> dict:
    import dagster as dg
    import duckdb

    from budget_pipeline import runner
    from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
    from budget_pipeline.sources.accounts import open_simulated

    scenario, db_path = folder / "scenario.yaml", folder / "warehouse.duckdb"
    resources = {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(folder / "pools.yaml")),
        "account": AdAccount(scenario_path=str(scenario)),
    }
    env = dict(os.environ)
    # a launched run process importing the code location: before anything ran (the scenario
    # cache is cold, as after an edit of the scenario) and after (warm)
    out: dict = {"seconds": {"import_cold": import_seconds(env)}}
    instance = dg.DagsterInstance.ephemeral()
    keys = runner.partition_keys()
    # the backfill leaves the newest day of the history out, so that the newest-day cycle
    # brings a new day and a new evaluation point (a cycle on data it has already decided
    # keeps its decisions: see defs/evaluation_point); the last key is the day after the history
    history, tick_day = keys[:-1], keys[-1]

    def timed(phase: str, fn):
        started = time.perf_counter()
        value = fn()
        out["seconds"][phase] = time.perf_counter() - started
        return value

    full = timed(
        "full_cycle",
        lambda: _check(runner.run_cycle(instance, history[:-1], resources=resources), "full cycle"),
    )
    out["rows"] = int(
        full.asset_materializations_for_node("insights")[-1].metadata["table_rows_total"].value
    )
    out["partitions"] = len(history) - 1
    newest = timed(
        "newest_day",
        lambda: _check(
            runner.run_cycle(instance, history[-1:], resources=resources), "newest-day cycle"
        ),
    )
    out["plan_metadata_bytes"] = _metadata_bytes(newest, "rebalance_plan")
    out["metadata_bytes"] = sum(
        _metadata_bytes(newest, node)
        for node in (
            "ad_entities",
            "raw_insights",
            "insights",
            "entity_baselines",
            "composite_scores",
            "trigger_states",
            "rebalance_plan",
        )
    )
    timed(
        "execution",
        lambda: _check(runner.run_execution(instance, resources=resources), "execution"),
    )
    # the warehouse as the newest-day cycle left it, for the decision steps (.decisions): they
    # are timed as the cycle decided, right after the Insights were written and the baselines
    # stored at the new point; the tick below writes hours again, after which the scores
    # would keep their decisions, not compute them
    shutil.copyfile(db_path, folder / DECIDED_COPY)
    wal = db_path.with_name(db_path.name + ".wal")  # none once the last connection closed
    if wal.exists():
        shutil.copyfile(wal, folder / f"{DECIDED_COPY}.wal")
    con = duckdb.connect(str(db_path))
    try:
        open_simulated(con, scenario).advance(1)
    finally:
        con.close()
    timed(
        "intraday_tick",
        lambda: _check(
            runner.run_cycle(instance, [tick_day], resources=resources), "intraday tick"
        ),
    )
    out["peak_rss_mb"] = peak_rss_mb()
    out["seconds"]["import_warm"] = import_seconds(env)
    return out


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(measure(Path(sys.argv[1]))))
