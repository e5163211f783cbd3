"""The oracle: the best daily allocation under the simulated account's true response curves.

Expected daily purchase value of an ad set at daily spend ``b`` (major units) is

    value(b) = aov × scale × efficiency_now × mean weekday factor × (b / 100) ** elasticity

which is concave, so the optimum equalises marginal value across ad sets. The oracle bisects on
that common marginal value (the Lagrange multiplier of the budget constraint), vectorised over
ad sets, and rounds to minor units with a largest-remainder split that sums exactly to the
total. It is the upper bound any policy can reach with the same money (SPEC §10).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from budget_pipeline.money import largest_remainder_split, minor_factor
from budget_pipeline.sources.simulated.account import WEEKDAY, NowView, SimulatedAccount

ORACLE_SCHEMA = {
    "adset_id": pl.Utf8(),
    "daily_budget": pl.Int64(),
    "expected_conversions": pl.Float64(),
    "expected_value": pl.Float64(),
}
_BISECTION_STEPS = 200


def _select(view: NowView, adset_ids: list[str] | None) -> np.ndarray:
    if adset_ids is None:
        return np.flatnonzero(view.deliverable)
    index = {a: i for i, a in enumerate(view.adset_ids)}
    unknown = [a for a in adset_ids if a not in index]
    if unknown:
        raise ValueError(f"unknown ad set ids {unknown}")
    if len(set(adset_ids)) != len(adset_ids):
        raise ValueError(f"ad set ids repeated in {adset_ids}")
    return np.array([index[a] for a in adset_ids], dtype=np.int64)


def _conversions(view: NowView, rows: np.ndarray, budget_major: np.ndarray) -> np.ndarray:
    """Expected conversions per day at ``budget_major`` per day, at ``now``."""
    level = view.scale[rows] * view.efficiency[rows] * WEEKDAY.mean()
    return level * (np.maximum(budget_major, 0.0) / 100.0) ** view.elasticity[rows]


def oracle_allocation(
    account: SimulatedAccount,
    total_daily_budget: int,
    adset_ids: list[str] | None = None,
    min_budget: int = 100,
) -> pl.DataFrame:
    """Split ``total_daily_budget`` (minor units) to maximise expected daily purchase value.

    ``adset_ids`` defaults to every ad set that can deliver at ``now``; each gets at least
    ``min_budget`` minor units. Returns adset_id, daily_budget (Int64, summing exactly to the
    total), expected_conversions and expected_value (major units per day).
    """
    view = account.now_view()
    rows = _select(view, adset_ids)
    if rows.size == 0:
        raise ValueError("no ad set to allocate to (none can deliver at now)")
    total, floor_minor = int(total_daily_budget), int(min_budget)
    if floor_minor < 0 or total < floor_minor * rows.size:
        raise ValueError(
            f"total {total_daily_budget} cannot give {rows.size} ad sets at least {min_budget} "
            "minor units each"
        )
    factor = minor_factor(view.currency)
    total_major, floor_major = total / factor, floor_minor / factor
    # value_i(b) = a_i (b/100)^e_i  =>  marginal a_i e_i / 100 (b/100)^(e_i - 1) = lam
    a = view.aov[rows] * view.scale[rows] * view.efficiency[rows] * WEEKDAY.mean()
    e = view.elasticity[rows]
    slope = a * e / 100.0

    def spend_at(log_lam: float) -> np.ndarray:
        b = 100.0 * np.exp((log_lam - np.log(slope)) / (e - 1.0))
        return np.maximum(b, floor_major)

    def log_marginal(b: float) -> np.ndarray:
        return np.log(slope) + (e - 1.0) * np.log(max(b, 1e-9) / 100.0)

    lo = float(log_marginal(total_major).min()) - 1.0  # every ad set wants >= total: too much
    hi = float(log_marginal(max(floor_major, 1e-6)).max()) + 1.0  # all at the floor: too little
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        if spend_at(mid).sum() > total_major:
            lo = mid
        else:
            hi = mid
    best = spend_at(hi)
    extra = np.maximum(best - floor_major, 0.0)
    budget = floor_minor + largest_remainder_split(total - floor_minor * rows.size, extra)
    conversions = _conversions(view, rows, budget / factor)
    return pl.DataFrame(
        {
            "adset_id": [view.adset_ids[i] for i in rows],
            "daily_budget": budget,
            "expected_conversions": conversions,
            "expected_value": conversions * view.aov[rows],
        },
        schema=ORACLE_SCHEMA,
    )


def expected_daily_value(account: SimulatedAccount, budgets: pl.DataFrame) -> float:
    """Expected daily purchase value (major units) of ``budgets`` [adset_id, daily_budget minor].

    Uses the same true curves at ``now`` as :func:`oracle_allocation`, so any policy's
    allocation can be compared with the oracle's.
    """
    missing = {"adset_id", "daily_budget"} - set(budgets.columns)
    if missing:
        raise ValueError(f"budgets frame is missing columns {sorted(missing)}")
    view = account.now_view()
    ids = budgets["adset_id"].to_list()
    if not ids:
        return 0.0
    rows = _select(view, ids)
    minor = budgets["daily_budget"].cast(pl.Int64).to_numpy()
    if (minor < 0).any():
        raise ValueError("daily budgets must not be negative")
    factor = minor_factor(view.currency)
    return float((_conversions(view, rows, minor / factor) * view.aov[rows]).sum())


def current_allocation(account: SimulatedAccount) -> pl.DataFrame:
    """The daily budget (minor units) each deliverable ad set is effectively given at ``now``.

    Ad-set daily budgets as set; a CBO campaign's budget split as delivery splits it; a lifetime
    budget paced as remaining ÷ days left. Ready for :func:`expected_daily_value`.
    """
    view = account.now_view()
    rows = np.flatnonzero(view.deliverable)
    return pl.DataFrame(
        {"adset_id": [view.adset_ids[i] for i in rows], "daily_budget": view.daily_rate[rows]},
        schema={"adset_id": pl.Utf8(), "daily_budget": pl.Int64()},
    )
