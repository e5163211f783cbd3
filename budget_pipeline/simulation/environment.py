"""The files one closed-loop run works on: a seeded scenario, a live pools file, a warehouse.

The daily partitions are defined when the code location is imported, from the scenario and
``BUDGET_PIPELINE_SIMULATE_DAYS`` (days the clock may run past the history):
:func:`prepare_process` sets both before anything imports the definitions, and refuses a process
whose partitions were already made for another scenario or horizon.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from budget_pipeline import settings
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import PoolsConfig, load_pools
from budget_pipeline.sources.simulated import Scenario, load_scenario
from budget_pipeline.sources.simulated.replay import with_seed


@dataclass(frozen=True)
class LoopInputs:
    scenario: Scenario  # with the run's seed
    scenario_path: Path  # that scenario as a file (the pipeline's account reads it)
    pools: PoolsConfig  # every pool live, kill switch off
    pools_path: Path
    db_path: Path


def prepare_process(scenario_path: Path, days: int) -> None:
    """Point this process's partitions at ``scenario_path`` + ``days`` simulated days."""
    want = (str(Path(scenario_path).resolve()), str(days))
    if "budget_pipeline.defs.partitions" in sys.modules:
        have = (str(settings.scenario_path()), str(settings.simulate_days()))
        if have != want:
            raise RuntimeError(
                "the daily partitions of this process were made for another scenario or "
                f"horizon ({have}); simulate a scenario in a fresh process"
            )
        return
    os.environ[settings.SCENARIO_ENV], os.environ[settings.SIMULATE_DAYS_ENV] = want


def live_pools_file(pools_path: Path, target: Path) -> PoolsConfig:
    """A copy of ``pools_path`` with every pool live and the kill switch off (simulate moves
    money in every pool); a Meta rule path stays relative to the original file."""
    raw = yaml.safe_load(Path(pools_path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("pools"), list):
        raise ConfigError(f"pools file {pools_path}: expected a mapping with a 'pools' list")
    for pool in raw["pools"]:
        pool["mode"] = "live"
        rule = pool.get("meta_rule")
        if rule and not Path(rule).is_absolute():
            pool["meta_rule"] = str((Path(pools_path).parent / rule).resolve())
    raw.setdefault("settings", {})["kill_switch"] = False
    target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_pools(target)


def scenario_file(scenario: Scenario, target: Path) -> Path:
    """``scenario`` as a YAML file the pipeline's simulated account loads."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def loop_inputs(
    scenario_path: Path, pools_path: Path, seed: int | None, workdir: Path
) -> LoopInputs:
    """Files for one run in ``workdir`` (created): the scenario with ``seed``, live pools."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = load_scenario(scenario_path)
    scenario = base if seed is None else with_seed(base, seed)
    path = scenario_file(scenario, workdir / "scenario.yaml")
    pools = live_pools_file(pools_path, workdir / "pools_live.yaml")
    return LoopInputs(scenario, path, pools, workdir / "pools_live.yaml", workdir / "loop.duckdb")
