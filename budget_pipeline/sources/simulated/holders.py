"""Budget holders of a simulated account under a pools file: what a policy may move.

A budget holder is a daily-budget ad set outside CBO campaigns, or a CBO campaign, whose campaign
belongs to a pool of the :class:`PoolsConfig` (ids first, then name patterns, as the engine
assigns them). Lifetime budgets and campaigns outside every pool are not holders. A holder is
*movable* when it and its campaign are active and it is not locked; the others keep their
budgets but still count in their pool's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.sources.simulated.account import SimulatedAccount


@dataclass(frozen=True)
class Holders:
    entity_ids: list[str]
    is_campaign: np.ndarray  # bool per holder
    members: list[np.ndarray]  # ad set indices (account order) each holder funds
    pool_index: np.ndarray  # int per holder, into ``pools``
    budget: np.ndarray  # int64 minor units at the account's ``now``
    movable: np.ndarray  # bool per holder
    pools: list[str]
    floor: np.ndarray  # int64 minor units per pool
    ceiling: np.ndarray
    min_budget: int  # minor units, per holder
    cap: Fraction  # largest change as a fraction of the budget before it

    def step_bounds(self, budget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest integer budget reachable in one change from ``budget``."""
        budget = np.asarray(budget, dtype=np.int64)
        step = budget * self.cap.numerator // self.cap.denominator
        lo = np.maximum(budget - step, np.minimum(self.min_budget, budget))
        hi = budget + step
        fixed = ~self.movable
        return np.where(fixed, budget, lo), np.where(fixed, budget, hi)


def budget_holders(account: SimulatedAccount, config: PoolsConfig) -> Holders:
    """The holders of ``account`` under ``config`` with their budgets at ``now``."""
    entities = account.entities()
    budgets = dict(zip(entities["entity_id"], entities["daily_budget"], strict=True))
    status = dict(zip(entities["entity_id"], entities["status"], strict=True))
    pools = [p.name for p in config.pools]
    ids: list[str] = []
    is_campaign: list[bool] = []
    members: list[np.ndarray] = []
    pool_index: list[int] = []
    movable: list[bool] = []
    index = {a: i for i, a in enumerate(account._adset_ids)}
    for campaign in account._campaigns:
        pool = config.pool_for_campaign(campaign.id, campaign.name)
        if pool is None:
            continue
        camp_on = status[campaign.id] == "ACTIVE"
        if campaign.is_cbo:
            funded = [(campaign.id, True, [index[a.id] for a in campaign.adsets])]
        else:
            funded = [
                (a.id, False, [index[a.id]]) for a in campaign.adsets if a.lifetime_budget is None
            ]
        for entity_id, campaign_level, adsets in funded:
            ids.append(entity_id)
            is_campaign.append(campaign_level)
            members.append(np.array(adsets, dtype=np.int64))
            pool_index.append(pools.index(pool))
            movable.append(
                camp_on
                and status[entity_id] == "ACTIVE"
                and not config.is_locked(entity_id, campaign.id)
            )
    cap_pct = min(config.settings.learning_cap_pct, config.settings.learning_limit_pct)
    return Holders(
        entity_ids=ids,
        is_campaign=np.array(is_campaign, dtype=bool),
        members=members,
        pool_index=np.array(pool_index, dtype=np.int64),
        budget=np.array([int(budgets[e]) for e in ids], dtype=np.int64),
        movable=np.array(movable, dtype=bool),
        pools=pools,
        floor=np.array([config.floor_minor(p) for p in pools], dtype=np.int64),
        ceiling=np.array([config.ceiling_minor(p) for p in pools], dtype=np.int64),
        min_budget=config.min_adset_budget_minor,
        cap=Fraction(repr(float(cap_pct))).limit_denominator(10_000) / 100,
    )
