"""`budget-pipeline bench decisions`: every policy on the scenario library, one table.

Static budgets, the engine (the default pools file), a native Meta rule (every pool run by
``examples/rules/no_pause_proportional_roas.json``) and the oracle, each scenario on the same
seeds. A scenario's daily partitions are fixed when a process imports the code location, so each
(scenario, policy) closed loop runs in its own process (two at a time on two cores).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RULE_POOLS_PATH = EXAMPLES / "pools_meta_rule.yaml"
LOOP_POLICIES = {"engine": DEFAULT_POOLS_PATH, "meta rule": RULE_POOLS_PATH}


@dataclass(frozen=True)
class Row:
    scenario: str
    policy: str  # "static" | "engine" | "meta rule" | "oracle"
    value: float  # mean over seeds
    static_value: float
    oracle_value: float
    edits: float
    learning_resets: float
    pauses: float
    guard_breaches: float
    max_plans_per_pool_day: int
    seconds: float
    currency: str = "EUR"

    @property
    def uplift(self) -> float:
        return self.value / self.static_value - 1 if self.static_value else 0.0

    @property
    def oracle_share(self) -> float | None:
        gap = self.oracle_value - self.static_value
        return (self.value - self.static_value) / gap if gap > 0 else None


def _task(scenario_path: str, pools_path: str, policy: str, days: int, seeds: int) -> list[dict]:
    """One (scenario, pools file) closed loop in a fresh process; per policy, the means."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")  # as the CLI does
    from budget_pipeline.simulation.environment import prepare_process

    prepare_process(Path(scenario_path), days)
    from budget_pipeline.simulation.evaluate import simulate

    started = time.perf_counter()
    sim = simulate(Path(scenario_path), Path(pools_path), days, "engine", seeds=seeds)
    seconds = time.perf_counter() - started
    name = Path(scenario_path).stem
    from budget_pipeline.sources.simulated import load_scenario

    common = {
        "scenario": name,
        "currency": load_scenario(Path(scenario_path)).currency,
        "static_value": sim.static_value,
        "oracle_value": sim.oracle_value,
    }
    rows = [
        {
            **common,
            "policy": policy,
            "value": sim.value,
            "edits": sim.mean(lambda r: r.edits),
            "learning_resets": sim.mean(lambda r: r.learning_resets),
            "pauses": sim.mean(lambda r: r.pauses),
            "guard_breaches": sim.mean(lambda r: len(r.guard_breaches)),
            "max_plans_per_pool_day": max(r.max_plans_per_pool_day for r in sim.runs),
            "seconds": seconds,
        }
    ]
    if policy == "engine":  # static and the oracle come with every run; report them once
        rows.append({**common, "policy": "static", "value": sim.static_value, "edits": 0,
                     "learning_resets": 0, "pauses": 0, "guard_breaches": 0,
                     "max_plans_per_pool_day": 0, "seconds": 0.0})  # fmt: skip
        rows.append(_oracle_row(sim, common))
    return rows


def _oracle_row(sim, common: dict) -> dict:
    """The oracle's row from the schedules the run already scored (its seeds' changes)."""
    from budget_pipeline.config.pools import load_pools
    from budget_pipeline.simulation.evaluate import count_changes
    from budget_pipeline.sources.simulated import load_scenario
    from budget_pipeline.sources.simulated.replay import with_seed
    from budget_pipeline.sources.simulated.rules import schedule_violations

    base, config = load_scenario(Path(sim.scenario)), load_pools(DEFAULT_POOLS_PATH)
    counts, breaches = [], []
    for run in sim.runs:
        scenario = with_seed(base, run.seed)
        counts.append(count_changes(scenario, run.oracle_changes))
        breaches.append(len(schedule_violations(scenario, config, run.oracle_changes)))
    n = len(counts)
    return {
        **common,
        "policy": "oracle",
        "value": common["oracle_value"],
        "edits": sum(c[0] for c in counts) / n,
        "learning_resets": sum(c[1] for c in counts) / n,
        "pauses": sum(c[2] for c in counts) / n,
        "guard_breaches": sum(breaches) / n,
        "max_plans_per_pool_day": 1,
        "seconds": 0.0,
    }


def run_decisions_bench(
    scenarios: Sequence[Path],
    *,
    days: int = 21,
    seeds: int = 3,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    tasks = [
        (str(path), str(pools), policy, days, seeds)
        for path in scenarios
        for policy, pools in LOOP_POLICIES.items()
    ]
    rows: list[Row] = []
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, max_tasks_per_child=1
    ) as pool:
        pending = {pool.submit(_task, *task): task for task in tasks}
        for done in futures.as_completed(pending):
            scenario, _, policy, _, _ = pending[done]
            for row in done.result():
                rows.append(Row(**row))
            if progress:
                progress(f"  {Path(scenario).stem} · {policy}: done")
    order = {"static": 0, "engine": 1, "meta rule": 2, "oracle": 3}
    names = [Path(p).stem for p in scenarios]
    return sorted(rows, key=lambda r: (names.index(r.scenario), order[r.policy]))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def table_markdown(rows: Sequence[Row], *, days: int, seeds: int) -> str:
    lines = [
        f"Value uplift vs static budgets over {days} days, mean of {seeds} seed(s) (same seeds "
        "for every policy); share = (policy − static) ÷ (oracle − static).",
        "",
        "| scenario | policy | uplift vs static | value vs static | share of oracle | edits "
        "| learning resets | pauses | guard breaches | max plans per pool and day |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.policy == "static":
            continue
        share = r.oracle_share if r.policy != "oracle" else 1.0
        lines.append(
            f"| {r.scenario} | {r.policy} | {_pct(r.uplift)} | "
            f"{r.value - r.static_value:+,.2f} {r.currency} | "
            f"{'n/a' if share is None else f'{share:.0%}'} | {r.edits:.1f} | "
            f"{r.learning_resets:g} | {r.pauses:g} | {r.guard_breaches:g} | "
            f"{r.max_plans_per_pool_day} |"
        )
    oracle_mean = None
    for policy in ("oracle", "engine", "meta rule"):
        mine = [r for r in rows if r.policy == policy]
        if not mine:
            continue
        mean_uplift = sum(r.uplift for r in mine) / len(mine)
        if policy == "oracle":
            oracle_mean = mean_uplift
        share = (
            f"{mean_uplift / oracle_mean:.0%}"
            if oracle_mean and oracle_mean > 0 and policy != "oracle"
            else ""
        )
        lines.append(f"| **mean** | {policy} | {_pct(mean_uplift)} | | {share} | | | | | |")
    return "\n".join(lines)


def write_chart(rows: Sequence[Row], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    policies = ("engine", "meta rule", "oracle")
    width = 0.27
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for i, policy in enumerate(policies):
        values = [
            next((r.uplift * 100 for r in rows if r.scenario == s and r.policy == policy), 0.0)
            for s in scenarios
        ]
        ax.bar([x + (i - 1) * width for x in range(len(scenarios))], values, width, label=policy)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(scenarios)), scenarios, rotation=20, ha="right")
    ax.set_ylabel("value uplift vs static (%)")
    ax.set_title("Decision quality on the scenario library")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
