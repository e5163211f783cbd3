"""Expected daily value of each budget holder as a function of its budget, from the true model.

What the simulator delivers in its expected world (``noise="none"``) at a constant daily budget
``r`` held long enough for frequency to settle::

    spend       = r × mean utilisation
    value/day   = aov × scale × weekday × shift(day) × fatigue(spend) × (spend / 100) ** elasticity

where ``fatigue(spend)`` is the steady state of the simulator's frequency model (impressions from
spend and a CPM that rises with frequency, 6-of-7-days reach memory out of a finite audience).
A CBO campaign's budget is split among its live ad sets in proportion to scale × shift, as the
simulator splits it. The oracle plans on these curves and checks its plans on the simulator.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from budget_pipeline.sources.simulated.account import (
    CPM_PER_FREQUENCY,
    FATIGUE_FLOOR,
    FATIGUE_FREE_FREQUENCY,
    MEAN_UTILISATION,
    RECENT_REACH_KEEP,
    SimulatedAccount,
)
from budget_pipeline.sources.simulated.holders import Holders

_FIXED_POINT_STEPS = 25


def steady_fatigue(
    audience: np.ndarray, cpm: np.ndarray, fatigue: np.ndarray, spend: np.ndarray
) -> np.ndarray:
    """Steady-state fatigue multiplier of ad sets (rows: ``audience``, ``cpm`` at frequency 1,
    ``fatigue`` coefficient) at a constant daily ``spend`` (rows × G, major units)."""
    audience, cpm = audience[:, None], cpm[:, None]
    memory = RECENT_REACH_KEEP / (1 - RECENT_REACH_KEEP)  # recent reach = memory × daily reach
    frequency = np.ones_like(spend)
    for _ in range(_FIXED_POINT_STEPS):
        impressions = spend * 1000 / (cpm * (1 + CPM_PER_FREQUENCY * np.maximum(frequency - 1, 0)))
        q = -np.expm1(-impressions / audience)
        reach = audience * q / (1 + memory * q)
        new = np.divide(impressions, reach, out=np.ones_like(spend), where=reach > 0)
        frequency = 0.5 * (frequency + new)
    excess = np.maximum(frequency - FATIGUE_FREE_FREQUENCY, 0.0)
    return np.maximum(FATIGUE_FLOOR, 1.0 - fatigue[:, None] * excess)


def value_tables(
    account: SimulatedAccount,
    holders: Holders,
    grid: np.ndarray,
    days: int,
    drift: np.ndarray | None = None,
) -> np.ndarray:
    """Expected value (major units) per day × holder × grid budget for the ``days`` days after
    ``now``'s day. ``grid`` is holders × G daily budgets in minor units; ``drift`` (days × ad
    sets, optional) multiplies each ad set's efficiency, e.g. a seed's true drift path."""
    n = len(account._adset_ids)
    holder_of = np.full(n, -1)
    for h, members in enumerate(holders.members):
        holder_of[members] = h
    funded = holder_of >= 0
    idx = np.flatnonzero(funded)
    cur = account._current
    active = cur.adset_active & cur.campaign_active[account._adset_campaign]
    first = account.now.date()
    day0 = (first - account.scenario.start).days
    out = np.zeros((days, len(holders.entity_ids), grid.shape[1]))
    factor = account._factor
    for t in range(days):
        d = day0 + t
        shift = account._shift_level(d) * (1.0 if drift is None else drift[t])
        weekday = account._weekday[(first + timedelta(days=t)).weekday()]
        live = active & (d >= account._start_day)
        weight = account._scale * shift * live
        total = np.zeros(len(holders.entity_ids))
        np.add.at(total, holder_of[idx], weight[idx])
        share = np.divide(weight[idx], total[holder_of[idx]], out=np.zeros(idx.size),
                          where=total[holder_of[idx]] > 0)  # fmt: skip
        spend = share[:, None] * grid[holder_of[idx]] / factor * MEAN_UTILISATION
        fatigue = steady_fatigue(
            account._audience[idx], account._cpm[idx], account._fatigue[idx], spend
        )
        level = (account._aov * account._scale * shift * weekday)[idx, None]  # shift × drift
        value = level * fatigue * (spend / 100.0) ** account._elasticity[idx, None]
        np.add.at(out[t], holder_of[idx], value * live[idx, None])
    return out
