"""``budget-pipeline bench``: time the pipeline on the default account and on a copy N times
larger, in one process, and report ratios (machines here are shared and noisy: compare the
two columns of one run, not numbers across runs)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dagster as dg
import yaml

from budget_pipeline import runner
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH


@dataclass
class Timing:
    phase: str
    seconds: float
    rows: int


def scaled_inputs(copies: int, folder: Path) -> tuple[Path, Path]:
    """The default scenario with every campaign copied ``copies`` times (new ids), and the
    default pools with floors and ceilings scaled alike."""
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8"))
    campaigns = []
    for copy in range(copies):
        for camp in raw["campaigns"]:
            shift = copy * 10**6
            campaigns.append(
                camp
                | {
                    "id": str(int(camp["id"]) + shift),
                    "name": f"{camp['name']} #{copy}",
                    "adsets": [a | {"id": str(int(a["id"]) + shift)} for a in camp["adsets"]],
                }
            )
    raw["campaigns"] = campaigns
    raw["pools"] = [
        p | {"floor": p["floor"] * copies, "ceiling": p["ceiling"] * copies} for p in raw["pools"]
    ]
    pools = yaml.safe_load(DEFAULT_POOLS_PATH.read_text(encoding="utf-8"))
    pools["pools"] = [
        p | {"floor": p["floor"] * copies, "ceiling": p["ceiling"] * copies} for p in pools["pools"]
    ]
    scenario_path, pools_path = folder / "scenario.yaml", folder / "pools.yaml"
    scenario_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    pools_path.write_text(yaml.safe_dump(pools, sort_keys=False), encoding="utf-8")
    return scenario_path, pools_path


def _timed(phase: str, fn: Callable[[], int]) -> Timing:
    started = time.perf_counter()
    rows = fn()
    return Timing(phase, time.perf_counter() - started, rows)


def measure(scenario_path: Path, pools_path: Path, db_path: Path) -> list[Timing]:
    from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
    from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

    resources = {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(pools_path)),
        "account": AdAccount(scenario_path=str(scenario_path)),
    }
    instance = dg.DagsterInstance.ephemeral()
    out = []

    def simulate() -> int:
        scenario = load_scenario(scenario_path)
        frame = SimulatedAccount(scenario).hourly_insights(
            scenario.start, scenario.end - timedelta(days=1)
        )
        return frame.height

    def cycle() -> int:
        result = runner.run_cycle(instance, resources=resources)
        if not result.success:
            raise RuntimeError(f"cycle failed: {result.get_step_failure_events()}")
        mat = result.asset_materializations_for_node("insights")[-1]
        return int(mat.metadata["table_rows_total"].value)

    def rerun_newest_day() -> int:
        result = runner.run_cycle(instance, runner.partition_keys(1), resources=resources)
        if not result.success:
            raise RuntimeError(f"cycle failed: {result.get_step_failure_events()}")
        return int(result.asset_materializations_for_node("insights")[-1].metadata["rows"].value)

    def execute() -> int:
        result = runner.run_execution(instance, resources=resources)
        if not result.success:
            raise RuntimeError(f"execution failed: {result.get_step_failure_events()}")
        mats = [
            m
            for m in result.asset_materializations_for_node("budget_execution")
            if m.asset_key == dg.AssetKey("budget_execution")
        ]
        return int(mats[-1].metadata["steps"].value)

    out.append(_timed("simulate history", simulate))
    out.append(_timed("cycle: all partitions + plan + checks (one run)", cycle))
    out.append(_timed("cycle: newest day (3-day re-pull)", rerun_newest_day))
    out.append(_timed("execution (observe)", execute))
    return out


def run_bench(copies: int) -> str:
    with tempfile.TemporaryDirectory(prefix="budget_pipeline_bench_") as tmp:
        folder = Path(tmp)
        base = measure(DEFAULT_SCENARIO_PATH, DEFAULT_POOLS_PATH, folder / "base.duckdb")
        scenario_path, pools_path = scaled_inputs(copies, folder)
        big = measure(scenario_path, pools_path, folder / "scaled.duckdb")
    lines = [
        f"| phase | default (s) | rows | x{copies} ad sets (s) | rows | time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for a, b in zip(base, big, strict=True):
        lines.append(
            f"| {a.phase} | {a.seconds:.2f} | {a.rows:,} | {b.seconds:.2f} | {b.rows:,} | "
            f"{b.seconds / a.seconds:.2f} |"
        )
    total_a = sum(t.seconds for t in base)
    total_b = sum(t.seconds for t in big)
    lines.append(f"| total | {total_a:.2f} | | {total_b:.2f} | | {total_b / total_a:.2f} |")
    return "\n".join(lines)
