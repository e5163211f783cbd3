"""Check a schedule of changes against the rules every policy obeys (the oracle's included).

:func:`schedule_violations` replays the budget changes of a run (``state()["changes"]`` format)
day by day over the pools file's budget holders and lists, in words, every change that moves a
non-holder or a lifetime budget, exceeds the step cap, goes below the minimum budget, edits a
holder twice in a day, or leaves a pool outside floor..ceiling or the account total of active
budgets changed (a paused holder's budget spends nothing: its money may go to active ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.sources.simulated.account import SimulatedAccount
from budget_pipeline.sources.simulated.holders import budget_holders
from budget_pipeline.sources.simulated.scenario import Scenario


def schedule_violations(
    scenario: Scenario, config: PoolsConfig, changes: Sequence[dict]
) -> list[str]:
    """Every rule the budget ``changes`` break (empty: the schedule is one any policy may run)."""
    holders = budget_holders(SimulatedAccount(scenario, noise="none"), config)
    index = {e: i for i, e in enumerate(holders.entity_ids)}
    budget = holders.budget.copy()
    total = int(budget.sum())
    out: list[str] = []
    active = np.ones(len(budget), dtype=bool)  # a paused holder's budget spends nothing
    cbo_of = {a.id: c.id for c in scenario.campaigns if c.is_cbo for a in c.adsets}
    cbo_live = {
        c.id: {a.id for a in c.adsets if a.status == "ACTIVE"}
        for c in scenario.campaigns
        if c.is_cbo
    }
    by_day: dict[str, list[dict]] = {}
    for change in changes:
        by_day.setdefault(datetime.fromisoformat(change["at"]).date().isoformat(), []).append(
            change
        )
    for day, day_changes in sorted(by_day.items()):
        seen: set[str] = set()
        for change in day_changes:
            if change["field"] == "status":
                entity = change["entity_id"]
                if entity in cbo_of:  # an ad set under CBO: its campaign spends elsewhere
                    live = cbo_live[cbo_of[entity]]
                    (live.add if change["value"] == "ACTIVE" else live.discard)(entity)
                    if cbo_of[entity] in index:  # the last live one stops the campaign
                        active[index[cbo_of[entity]]] = bool(live)
                elif entity not in index:
                    # a non-CBO campaign paused stops its ad sets' spending behind the pools'
                    # backs: money parked, not moved
                    out.append(f"{day}: {entity} status is not a pool's budget holder's")
                elif not holders.movable[index[entity]]:
                    out.append(f"{day}: {entity} is locked or paused but its status changed")
                else:
                    active[index[entity]] = change["value"] == "ACTIVE"
                continue
            entity, value = change["entity_id"], int(change["value"])
            if entity not in index or change["field"] != "daily_budget":
                out.append(f"{day}: {entity} {change['field']} is not a pool's daily budget holder")
                continue
            if entity in seen:
                out.append(f"{day}: {entity} changed more than once in a day")
            seen.add(entity)
            h = index[entity]
            lo, hi = holders.step_bounds(budget[h : h + 1])
            if not holders.movable[h]:
                out.append(f"{day}: {entity} is locked or paused but changed")
            elif value < holders.min_budget:
                out.append(
                    f"{day}: {entity} set to {value}, below the minimum {holders.min_budget}"
                )
            elif not lo[0] <= value <= hi[0] and value >= holders.min_budget:
                out.append(
                    f"{day}: {entity} {budget[h]} -> {value} exceeds the step cap "
                    f"({float(holders.cap) * 100:g} %)"
                )
            budget[h] = value
        spending = np.where(active, budget, 0)
        sums = np.bincount(holders.pool_index, weights=spending, minlength=len(holders.pools))
        for p, name in enumerate(holders.pools):
            if not holders.floor[p] <= sums[p] <= holders.ceiling[p]:
                out.append(
                    f"{day}: pool {name} totals {int(sums[p])}, outside "
                    f"{holders.floor[p]}..{holders.ceiling[p]}"
                )
        if int(spending.sum()) != total:
            out.append(f"{day}: account total {int(spending.sum())} differs from {total}")
    return out
