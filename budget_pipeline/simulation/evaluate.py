"""A policy's value over N simulated days, against static budgets and the oracle (SPEC §11).

Policies: ``engine`` (the pipeline's own decisions in closed loop, the pools file as given — a
pool with ``policy: meta_rule`` runs that rule), ``static`` (change nothing) and ``oracle``
(:func:`~budget_pipeline.sources.simulated.oracle_schedule.oracle_schedule`, knowing the truth
of each seed). Every policy runs on the same seeds (common random numbers); the value of a run is
the fully attributed purchase value of its days, recomputed from its changes by replay in the
``EVALUATION`` world: the seed's own path (efficiency drift, delivery, prices) with every
purchase at its expectation. The engine decides on the noisy purchases it saw; its score does
not depend on which of them happened to land, so a policy cannot beat the oracle by luck, and a
difference between two policies is a difference in their decisions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from budget_pipeline.config.pools import PoolsConfig, load_pools
from budget_pipeline.simulation.closed_loop import DayRecord, LoopOutcome, run_closed_loop
from budget_pipeline.simulation.environment import loop_inputs
from budget_pipeline.sources.simulated import Scenario, SimulatedAccount, load_scenario
from budget_pipeline.sources.simulated.account import Noise
from budget_pipeline.sources.simulated.oracle_schedule import oracle_schedule
from budget_pipeline.sources.simulated.replay import RunValue, replay, with_seed
from budget_pipeline.sources.simulated.rules import schedule_violations

POLICIES = ("engine", "static", "oracle")
EVALUATION: Noise = "expected"
LEARNING_THRESHOLD = 0.20  # the simulator's: a bigger change re-enters learning


@dataclass(frozen=True)
class SeedRun:
    seed: int
    value: RunValue
    static: RunValue
    oracle: RunValue
    changes: list[dict]
    edits: int
    learning_resets: int
    pauses: int
    guard_breaches: list[str]
    max_plans_per_pool_day: int  # executed plans with applied moves in one pool on one day
    days: list[DayRecord] = field(default_factory=list)
    oracle_changes: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Simulation:
    scenario: str
    policy: str
    days: int
    runs: list[SeedRun]

    def mean(self, pick: Callable[[SeedRun], float]) -> float:
        return sum(pick(r) for r in self.runs) / len(self.runs)

    @property
    def value(self) -> float:
        return self.mean(lambda r: r.value.value)

    @property
    def static_value(self) -> float:
        return self.mean(lambda r: r.static.value)

    @property
    def oracle_value(self) -> float:
        return self.mean(lambda r: r.oracle.value)

    @property
    def uplift(self) -> float:
        return self.value / self.static_value - 1 if self.static_value else 0.0

    @property
    def oracle_uplift(self) -> float:
        return self.oracle_value / self.static_value - 1 if self.static_value else 0.0

    @property
    def oracle_share(self) -> float | None:
        gap = self.oracle_value - self.static_value
        return (self.value - self.static_value) / gap if gap > 0 else None


def count_changes(scenario: Scenario, changes: Sequence[dict]) -> tuple[int, int, int]:
    """(budget edits, learning resets, pauses) of a change list."""
    budgets = {
        row["entity_id"]: row["daily_budget"] or row["lifetime_budget"]
        for row in SimulatedAccount(scenario).entities().iter_rows(named=True)
    }
    edits = resets = pauses = 0
    for change in changes:
        if change["field"] == "status":
            pauses += change["value"] == "PAUSED"
            continue
        edits += 1
        old = budgets.get(change["entity_id"]) or 0
        new = int(change["value"])
        if old and abs(new - old) / old > LEARNING_THRESHOLD:
            resets += 1
        budgets[change["entity_id"]] = new
    return edits, resets, pauses


def plans_per_pool_day(action_log: pl.DataFrame | None) -> int:
    """The most executed plans that applied budget moves in one pool on one day."""
    if action_log is None or action_log.height == 0:
        return 0
    applied = action_log.filter(
        (pl.col("status") == "applied") & (pl.col("step") == "budget") & (pl.col("mode") == "live")
    )
    if applied.height == 0:
        return 0
    per = applied.group_by(pl.col("pool"), pl.col("effective_at").dt.date()).agg(
        pl.col("plan_id").n_unique()
    )
    return int(per["plan_id"].max())


def _seed_run(
    scenario: Scenario,
    config: PoolsConfig,
    days: int,
    changes: list[dict],
    oracle_changes: list[dict],
    loop: LoopOutcome | None,
) -> SeedRun:
    edits, resets, pauses = count_changes(scenario, changes)
    return SeedRun(
        seed=scenario.seed,
        value=replay(scenario, changes, days, noise=EVALUATION),
        static=replay(scenario, [], days, noise=EVALUATION),
        oracle=replay(scenario, oracle_changes, days, noise=EVALUATION),
        changes=changes,
        edits=edits,
        learning_resets=resets,
        pauses=pauses,
        guard_breaches=schedule_violations(scenario, config, changes),
        max_plans_per_pool_day=plans_per_pool_day(loop.action_log if loop else None),
        days=loop.days if loop else [],
        oracle_changes=oracle_changes,
    )


def simulate(
    scenario_path: Path,
    pools_path: Path,
    days: int,
    policy: str,
    *,
    seeds: int = 1,
    workdir: Path | None = None,
    on_day: Callable[[int, DayRecord], None] | None = None,
) -> Simulation:
    """Run ``policy`` for ``days`` days on ``seeds`` seeds (the scenario's seed, then +1, …)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    base = load_scenario(scenario_path)
    config = load_pools(pools_path)
    runs = []
    with tempfile.TemporaryDirectory(prefix="simulate-") as tmp:
        root = workdir or Path(tmp)
        for k in range(seeds):
            seed = base.seed + k
            scenario = with_seed(base, seed)
            loop = None
            oracle = oracle_schedule(scenario, config, days, noise=EVALUATION).changes
            if policy == "engine":
                inputs = loop_inputs(scenario_path, pools_path, seed, root / f"seed-{seed}")
                loop = run_closed_loop(
                    inputs,
                    days,
                    on_day=(lambda r, seed=seed: on_day(seed, r)) if on_day else None,
                )
                changes = loop.changes
            elif policy == "oracle":
                changes = oracle
            else:
                changes = []
            runs.append(_seed_run(scenario, config, days, changes, oracle, loop))
    return Simulation(str(scenario_path), policy, days, runs)
