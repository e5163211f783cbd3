"""The oracle schedule: rule-abiding, above static and the daily jump on every library scenario."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

import pytest

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.sources.simulated import DEFAULT_SCENARIO_PATH, load_scenario
from budget_pipeline.sources.simulated.library import KINDS, scenario_path
from budget_pipeline.sources.simulated.oracle_schedule import daily_jump_schedule, oracle_schedule
from budget_pipeline.sources.simulated.replay import replay, with_seed
from budget_pipeline.sources.simulated.rules import schedule_violations

DAYS = 21


@pytest.fixture(scope="module")
def pools():
    return load_pools(DEFAULT_POOLS_PATH)


@pytest.mark.parametrize("kind", ["default", *KINDS])
def test_oracle_beats_static_and_the_daily_jump(kind, pools):
    path = DEFAULT_SCENARIO_PATH if kind == "default" else scenario_path(kind)
    scenario = load_scenario(path)
    started = time.perf_counter()
    oracle = oracle_schedule(scenario, pools, DAYS)
    assert time.perf_counter() - started < 10  # measured 0.4-0.6 s on one core
    assert schedule_violations(scenario, pools, oracle.changes) == []
    assert all(datetime.fromisoformat(c["at"]).time().hour == 0 for c in oracle.changes)
    # its value is what anyone recomputes from its changes
    assert replay(scenario, oracle.changes, DAYS, noise="none").value == oracle.value
    static = replay(scenario, [], DAYS, noise="none").value
    jump = replay(scenario, daily_jump_schedule(scenario, pools, DAYS), DAYS, noise="none").value
    assert oracle.value >= static
    assert oracle.value >= jump
    if kind in ("near_optimal_noisy", "weekday_seasonality"):
        assert oracle.uplift < 0.02
    else:  # every other scenario has money to be made within the rules
        assert oracle.uplift > 0.04, oracle.candidates
        assert oracle.value > jump


def test_misallocated_leaves_more_than_ten_percent_on_the_table(pools):
    scenario = load_scenario(scenario_path("misallocated"))
    assert oracle_schedule(scenario, pools, DAYS).uplift > 0.10


def test_the_daily_jump_breaks_the_step_cap(pools):
    scenario = load_scenario(scenario_path("misallocated"))
    broken = schedule_violations(scenario, pools, daily_jump_schedule(scenario, pools, 3))
    assert any("step cap" in v for v in broken)


def test_winner_is_followed_after_its_shift(pools):
    scenario = load_scenario(scenario_path("winner"))
    winner = next(
        a.id for _, a in scenario.iter_adsets() if a.shifts and a.shifts[0].efficiency > 1
    )
    changes = [
        c for c in oracle_schedule(scenario, pools, DAYS).changes if c["entity_id"] == winner
    ]
    budgets = [c["value"] for c in changes]
    assert budgets[-1] > 2 * budgets[0]  # it ends with well over twice its budget
    assert all(b2 <= b1 * 1.15 + 1 for b1, b2 in itertools.pairwise(budgets))


def test_oracle_over_seeds_with_full_noise(pools):
    # Scored on each seed's own world (common random numbers), knowing that seed's drift, the
    # oracle stays above static and above the daily jump, which reacts to the drift it sees.
    # Planned on expected curves alone it would lose to the jump here (+0.00 % vs +0.44 %).
    base = load_scenario(scenario_path("weekday_seasonality"))
    oracle, static, jump = [], [], []
    for seed in (1, 2, 3):
        scenario = with_seed(base, seed)
        result = oracle_schedule(scenario, pools, DAYS, noise="full")
        assert schedule_violations(scenario, pools, result.changes) == []
        oracle.append(result.value)
        static.append(result.static_value)
        changes = daily_jump_schedule(scenario, pools, DAYS, noise="full")
        jump.append(replay(scenario, changes, DAYS).value)
    assert sum(oracle) > sum(static)
    assert sum(oracle) > sum(jump)


def test_rules_catch_a_broken_schedule(pools):
    scenario = load_scenario(scenario_path("collapse"))
    oracle = oracle_schedule(scenario, pools, 3)
    first = oracle.changes[0]
    created = [*oracle.changes, first | {"at": first["at"], "value": first["value"] + 1}]
    problems = schedule_violations(scenario, pools, created)
    assert any("more than once" in p for p in problems)
    assert any("account total" in p for p in problems)
    lifetime = [{"at": first["at"], "entity_id": "nope", "field": "daily_budget", "value": 1}]
    assert "not a pool's daily budget holder" in schedule_violations(scenario, pools, lifetime)[0]
