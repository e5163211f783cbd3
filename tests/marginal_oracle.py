"""The marginal policy's equilibrium as it was before issue 12's rework (commit e29447a,
verbatim: ``git show e29447a:budget_pipeline/engine/marginal_policy.py``, its
``_solve_log_lambda`` and ``_equal_marginal_targets``): ``budget_at_marginal`` read from the
curves frame at every bisection step. The oracle the reworked one (its terms worked out once)
must match to the bit. A change of the policy itself changes both: retire this file then."""

# ruff: noqa
from __future__ import annotations

import numpy as np
import polars as pl

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.response_curves import budget_at_marginal
from budget_pipeline.money import minor_factor

_BISECTION = 80


def _solve_log_lambda(
    group: np.ndarray,
    n_groups: int,
    curves: pl.DataFrame,
    lo_budget: np.ndarray,
    totals: np.ndarray,
) -> np.ndarray:
    """Per group, the log marginal return λ at which its holders' budgets (each at least
    ``lo_budget``) add up to ``totals`` (bisection, vectorised over groups)."""
    lo = np.full(n_groups, -40.0)
    hi = np.full(n_groups, 40.0)
    for _ in range(_BISECTION):
        mid = (lo + hi) / 2
        budgets = np.maximum(budget_at_marginal(curves, mid[group]), lo_budget)
        spent = np.bincount(group, weights=budgets, minlength=n_groups)
        too_much = spent > totals  # λ too low: raise it
        lo = np.where(too_much, mid, lo)
        hi = np.where(too_much, hi, mid)
    return (lo + hi) / 2


def _equal_marginal_targets(frame: pl.DataFrame, curves: pl.DataFrame, config: PoolsConfig):
    """Targets (major units) equalising marginal returns over the movable holders, pools kept
    within floor..ceiling; each holder's pool equilibrium log λ, its pool's total factor
    (target ÷ current), its pool index, and the account's equilibrium log λ."""
    factor = minor_factor(config.currency)
    pools = sorted(frame["pool"].unique().to_list())
    p_idx = frame["pool"].replace_strict(pools, list(range(len(pools)))).to_numpy()
    old = frame["old_budget"].to_numpy() / factor
    movable = frame["movable"].to_numpy()
    low = frame["min_budget"].to_numpy() / factor
    fixed = np.bincount(p_idx, weights=np.where(movable, 0.0, old), minlength=len(pools))
    budget = np.bincount(p_idx, weights=np.where(movable, old, 0.0), minlength=len(pools))
    floor = np.array([config.floor_minor(p) for p in pools]) / factor - fixed
    ceiling = np.array([config.ceiling_minor(p) for p in pools]) / factor - fixed
    lo_pool = np.minimum(np.maximum(floor, 0.0), budget)  # a pool outside its bounds stays put
    hi_pool = np.maximum(ceiling, budget)
    idx = np.flatnonzero(movable)
    sub = curves[idx]
    # 1. across pools: one marginal return for the account, each pool clamped to its bounds
    lo_g, hi_g = -40.0, 40.0
    total = budget.sum()
    for _ in range(_BISECTION):
        mid = (lo_g + hi_g) / 2
        b = np.maximum(budget_at_marginal(sub, np.full(idx.size, mid)), low[idx])
        per_pool = np.bincount(p_idx[idx], weights=b, minlength=len(pools))
        if np.clip(per_pool, lo_pool, hi_pool).sum() > total:
            lo_g = mid
        else:
            hi_g = mid
    b = np.maximum(budget_at_marginal(sub, np.full(idx.size, hi_g)), low[idx])
    per_pool = np.clip(np.bincount(p_idx[idx], weights=b, minlength=len(pools)), lo_pool, hi_pool)
    # rounding of the clamp may leave the total a hair off: scale the unclamped pools
    per_pool *= total / per_pool.sum() if per_pool.sum() > 0 else 1.0
    # 2. within each pool: its total at one marginal return
    log_lam = _solve_log_lambda(p_idx[idx], len(pools), sub, low[idx], per_pool)
    targets = old.copy()
    targets[idx] = np.maximum(budget_at_marginal(sub, log_lam[p_idx[idx]]), low[idx])
    lam = np.full(len(old), np.nan)
    lam[idx] = log_lam[p_idx[idx]]
    factor = np.where(budget > 0, per_pool / np.where(budget > 0, budget, 1.0), 1.0)
    return targets, lam, factor[p_idx], p_idx, hi_g
