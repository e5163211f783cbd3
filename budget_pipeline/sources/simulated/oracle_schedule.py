"""The oracle schedule: the best N days of budget changes a rule-abiding policy could make.

SPEC §10: the oracle is an upper bound only if it plays by the same rules and optimises what the
simulator delivers. :func:`oracle_schedule` returns a list of changes in the format of
``SimulatedAccount.state()["changes"]``, each at 00:00 of a day (when the pipeline's daily cycle
applies its plan), that

- moves only budget holders of the pools file (daily-budget ad sets, CBO campaigns; lifetime
  budgets and locked or paused holders keep theirs), at most once per holder and day;
- keeps each pool's total within its floor..ceiling and the account's total unchanged (a
  rebalance moves money, it does not create it), every budget ≥ ``min_adset_budget``;
- changes a budget by at most min(learning_cap_pct, learning_limit_pct) % of its value before
  the change (15 % by default), so it never re-enters learning (the simulator's threshold is 20 %).

How: each day it solves, exactly, the concave allocation "maximise the expected value of the next
L + 1 days at these budgets" inside the box one step can reach (a common marginal value per pool,
by bisection, pools clamped to their bounds), from the true curves of
:mod:`~budget_pipeline.sources.simulated.surrogate` (future shifts, weekday curve, steady-state
fatigue, CBO split). Several look-aheads L and leaving budgets alone are candidate schedules; each
is simulated (``noise="none"`` by default, or the evaluation world given) and the best is
returned. So the oracle is never below static budgets, nor below a greedy policy that knows the
true curves and moves money toward the highest marginal return at the full step each day, which
is the most a well-tuned greedy engine can do.

:func:`daily_jump_schedule` is the reference it must beat: each day, jump every pool to
:func:`~budget_pipeline.sources.simulated.oracle.oracle_allocation` (the one-day optimum at the
truth of that morning) with no step cap, paying the learning penalty of large changes.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import numpy as np

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.sources.simulated.account import Noise, SimulatedAccount
from budget_pipeline.sources.simulated.holders import Holders, budget_holders
from budget_pipeline.sources.simulated.oracle import oracle_allocation
from budget_pipeline.sources.simulated.replay import replay
from budget_pipeline.sources.simulated.scenario import Scenario
from budget_pipeline.sources.simulated.surrogate import value_tables

GRID_POINTS = 200
_BISECTION_STEPS = 70
DEFAULT_LOOKAHEADS: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 10, 13, 16, 20)


@dataclass(frozen=True)
class OracleResult:
    changes: list[dict]  # state()["changes"] format, each at 00:00 of a day
    value: float  # fully attributed value of the chosen schedule in the evaluation world
    static_value: float  # the same world with budgets left alone
    lookahead: int | None  # the chosen candidate's look-ahead in days (None: static won)
    candidates: dict[str, float] = field(default_factory=dict)  # name → value
    seconds: float = 0.0

    @property
    def uplift(self) -> float:
        return self.value / self.static_value - 1 if self.static_value else 0.0


def oracle_schedule(
    scenario: Scenario,
    config: PoolsConfig,
    days: int,
    *,
    noise: Noise = "none",
    lookaheads: Sequence[int] = DEFAULT_LOOKAHEADS,
) -> OracleResult:
    """The best schedule of changes over the ``days`` days after the history (see module doc).

    Candidates are scored in the world ``noise`` of ``scenario`` (its seed): ``"none"`` for
    expected value, ``"full"`` to be an upper bound on that very seed. With ``"full"`` the oracle
    also knows the seed's efficiency drift (a truth a data-driven policy can partly observe)
    and plans with and without it.
    """
    started = _time.perf_counter()
    account = SimulatedAccount(scenario, noise="none")
    holders = budget_holders(account, config)
    grid = _grid(holders)
    worlds = {"": value_tables(account, holders, grid, days)}
    if noise != "none":
        drift = seed_drift(scenario, days)
        worlds["drift_"] = value_tables(account, holders, grid, days, drift)
    static = replay(scenario, [], days, noise=noise).value
    candidates: dict[str, float] = {"static": static}
    best: tuple[float, int | None, list[dict]] = (static, None, [])
    for prefix, tables in worlds.items():
        for lookahead in lookaheads:
            budgets = plan_budgets(holders, grid, tables, lookahead)
            changes = _changes(scenario, holders, budgets)
            value = replay(scenario, changes, days, noise=noise).value
            candidates[f"{prefix}lookahead_{lookahead}"] = value
            if value > best[0]:
                best = (value, lookahead, changes)
    return OracleResult(
        changes=best[2],
        value=best[0],
        static_value=static,
        lookahead=best[1],
        candidates=candidates,
        seconds=_time.perf_counter() - started,
    )


def seed_drift(scenario: Scenario, days: int) -> np.ndarray:
    """The seed's efficiency drift multiplier (days × ad sets) over the run: it does not depend
    on budgets, so a static run reveals it."""
    account = SimulatedAccount(scenario)
    account.advance(days * 24)
    sd = account._drift_sd
    run = account._simulated_days(scenario.days, scenario.days + days)
    return np.stack([np.exp(day.drift - sd**2 / 2) for day in run])


def plan_budgets(
    holders: Holders, grid: np.ndarray, tables: np.ndarray, lookahead: int
) -> np.ndarray:
    """Budgets (days × holders, minor units) chosen day by day within one step of the day before,
    each day maximising the expected value of that day and the next ``lookahead`` days."""
    days = tables.shape[0]
    budgets = np.zeros((days, len(holders.entity_ids)), dtype=np.int64)
    previous = holders.budget
    cumulative = np.concatenate([np.zeros((1, *tables.shape[1:])), np.cumsum(tables, axis=0)])
    for t in range(days):
        values = cumulative[min(t + lookahead + 1, days)] - cumulative[t]
        lo, hi = holders.step_bounds(previous)
        previous = allocate(values, grid, lo, hi, holders, int(holders.budget.sum()))
        budgets[t] = previous
    return budgets


def allocate(
    values: np.ndarray,
    grid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    holders: Holders,
    total: int,
) -> np.ndarray:
    """Integer budgets in ``lo``..``hi`` summing to ``total`` that maximise Σ ``values`` (holders
    × grid, interpolated), each pool's sum within its floor..ceiling where the box allows."""
    marginal = _knot_marginals(values, grid)
    pools, n_pools = holders.pool_index, len(holders.pools)
    min_sum = np.bincount(pools, weights=lo, minlength=n_pools)
    max_sum = np.bincount(pools, weights=hi, minlength=n_pools)
    floor = np.clip(holders.floor, min_sum, max_sum)
    ceiling = np.clip(holders.ceiling, min_sum, max_sum)

    def demand(lam: np.ndarray) -> np.ndarray:
        return np.clip(_inverse_marginal(marginal, grid, lam), lo, hi)

    def pool_sums(lam: np.ndarray) -> np.ndarray:
        return np.bincount(pools, weights=demand(lam), minlength=n_pools)

    low, high = float(marginal.min()) - 1.0, float(marginal.max()) + 1.0
    for _ in range(_BISECTION_STEPS):  # one common marginal value, pools clamped to bounds
        mid = (low + high) / 2
        spent = np.clip(pool_sums(np.full(pools.size, mid)), floor, ceiling).sum()
        low, high = (mid, high) if spent > total else (low, mid)
    target = np.clip(pool_sums(np.full(pools.size, high)), floor, ceiling)
    low_p = np.full(n_pools, float(marginal.min()) - 1.0)
    high_p = np.full(n_pools, float(marginal.max()) + 1.0)
    for _ in range(_BISECTION_STEPS):  # each pool's own marginal value for its clamped total
        mid = (low_p + high_p) / 2
        above = pool_sums(mid[pools]) > target
        low_p, high_p = np.where(above, mid, low_p), np.where(above, high_p, mid)
    exact = demand(high_p[pools])
    return _round(exact, lo, hi, total, holders)


def _grid(holders: Holders) -> np.ndarray:
    top = np.maximum(holders.ceiling[holders.pool_index], 2 * holders.budget) * 1.25
    bottom = np.full(top.shape, float(max(holders.min_budget, 1)))
    steps = np.linspace(0.0, 1.0, GRID_POINTS)
    return np.exp(np.log(bottom)[:, None] + np.log(top / bottom)[:, None] * steps[None, :])


def _knot_marginals(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Marginal value per minor unit at each grid knot, made strictly decreasing (concave hull
    of a curve that is concave but for the fatigue floor)."""
    segment = np.diff(values, axis=1) / np.diff(grid, axis=1)
    segment = np.minimum.accumulate(segment, axis=1)
    knots = np.concatenate(
        [segment[:, :1], (segment[:, 1:] + segment[:, :-1]) / 2, segment[:, -1:]], axis=1
    )
    scale = max(float(np.abs(knots).max()), 1e-12)
    return knots - 1e-9 * scale * np.arange(knots.shape[1])[None, :]


def _inverse_marginal(marginal: np.ndarray, grid: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The budget at which each holder's marginal value falls to ``lam`` (linear between knots)."""
    points = marginal.shape[1]
    k = (marginal >= lam[:, None]).sum(axis=1)
    inner = np.clip(k, 1, points - 1)
    rows = np.arange(marginal.shape[0])
    m0, m1 = marginal[rows, inner - 1], marginal[rows, inner]
    g0, g1 = grid[rows, inner - 1], grid[rows, inner]
    fraction = np.clip((m0 - lam) / np.maximum(m0 - m1, 1e-300), 0.0, 1.0)
    budget = g0 + (g1 - g0) * fraction
    return np.where(k == 0, grid[:, 0], np.where(k == points, grid[:, -1], budget))


def _round(exact: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: int, holders: Holders):
    """Integer budgets within lo..hi summing to ``total``, pools kept within their bounds: the
    cents left by flooring go one by one to pools below their floor first, never to a pool at
    its ceiling, then by the largest fractional part (and back the other way if over)."""
    budget = np.clip(np.floor(exact).astype(np.int64), lo, hi)
    fraction = exact - np.floor(exact)
    pools, n_pools = holders.pool_index, len(holders.pools)
    sums = np.bincount(pools, weights=budget, minlength=n_pools).astype(np.int64)
    gap = total - int(budget.sum())
    step = 1 if gap > 0 else -1
    for _ in range(abs(gap)):
        if step > 0:
            room = (budget < hi) & (sums[pools] < holders.ceiling[pools])
            urgent = sums[pools] < holders.floor[pools]
            key = np.where(room, fraction + 2 * urgent, -np.inf)
        else:
            room = (budget > lo) & (sums[pools] > holders.floor[pools])
            urgent = sums[pools] > holders.ceiling[pools]
            key = np.where(room, 1 - fraction + 2 * urgent, -np.inf)
        h = int(np.argmax(key))
        if not np.isfinite(key[h]):
            break
        budget[h] += step
        sums[pools[h]] += step
        fraction[h] -= step
    return budget


def _changes(scenario: Scenario, holders: Holders, budgets: np.ndarray) -> list[dict]:
    """Changes (state format) at 00:00 of each day where a holder's budget differs."""
    out: list[dict] = []
    previous = holders.budget
    for t, row in enumerate(budgets):
        at = (datetime.combine(scenario.end, time()) + timedelta(days=t)).isoformat()
        for h in np.flatnonzero(row != previous):
            out.append(
                {
                    "at": at,
                    "entity_id": holders.entity_ids[h],
                    "field": "daily_budget",
                    "value": int(row[h]),
                }
            )
        previous = row
    return out


def daily_jump_schedule(
    scenario: Scenario, config: PoolsConfig, days: int, *, noise: Noise = "none"
) -> list[dict]:
    """Each day at 00:00, every pool's movable holders jump to :func:`oracle_allocation` of the
    pool's total at that morning's truth (no step cap: large jumps re-enter learning)."""
    account = SimulatedAccount(scenario, noise=noise)
    holders = budget_holders(account, config)
    min_budget = holders.min_budget
    for _ in range(days):
        view = account.now_view()
        budgets = dict(zip(*account.entities().select("entity_id", "daily_budget"), strict=True))
        for p in range(len(holders.pools)):
            rows = [h for h in np.flatnonzero(holders.pool_index == p) if holders.movable[h]]
            rows = [h for h in rows if view.deliverable[holders.members[h]].any()]
            if not rows:
                continue
            members = [m for h in rows for m in holders.members[h] if view.deliverable[m]]
            total = sum(int(budgets[holders.entity_ids[h]]) for h in rows)
            if total < min_budget * len(members):
                continue
            ids = [account._adset_ids[m] for m in members]
            alloc = oracle_allocation(account, total, ids, min_budget=min_budget)
            by_adset = dict(zip(alloc["adset_id"], alloc["daily_budget"], strict=True))
            for h in rows:
                new = sum(by_adset.get(account._adset_ids[m], 0) for m in holders.members[h])
                entity = holders.entity_ids[h]
                if new != budgets[entity]:
                    account.apply_budget_change(entity, daily_budget=int(new))
        account.advance(24)
    return account.state()["changes"]
