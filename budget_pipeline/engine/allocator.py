"""The allocator: any policy's proposals → one guarded plan that conserves money (SPEC §5, §7).

A policy (:mod:`~budget_pipeline.engine.marginal_policy`, the seed's thresholds in
:mod:`~budget_pipeline.engine.threshold_policy`, a Meta rule in
:mod:`~budget_pipeline.engine.rule_policy`) says, per budget holder, where it wants the budget
(:data:`PROPOSALS`: a target, or a pause), how much it deserves money (``merit``: higher first;
a difference of ``cross_tier_margin`` is "clearly better") and why, in words. The allocator
knows no policy. It:

1. holds what a guard forbids moving (:func:`~budget_pipeline.engine.holders.with_blocks`);
2. turns targets into this cycle's step: a donor offers ``min(old − target, cap, old − min)``,
   a recipient wants ``min(target − old, cap)``, ``cap = ⌊old × learning cap %⌋``; the rest of
   a target is a glide path for later cycles. A pause offers its whole budget: a paused holder's
   money goes to active holders — only when all of it can be placed this cycle, else the pause
   waits and the holder is cut by one capped step instead;
3. moves money in three stages, each conserving the active total to the minor unit: within
   each pool, across pools of one tier, then across tiers only from a donor to a recipient whose
   merit exceeds the donor's by ``cross_tier_margin``; across pools within each pool's floor
   and ceiling (a pool outside them only moves toward them), and only between pools of the
   same mode (a live pool's money never funds a pool that only observes: the account would
   lose it). Higher-merit recipients are served first and lower-merit donors give first;
4. drops crumbs: a holder whose move is below the minimum move (``min_move`` major units and
   ``min_move_pct`` % of its budget) sits the cycle out and the flows are recomputed.

Vectorised over holders (numpy/polars) and grouped by pool
(:mod:`~budget_pipeline.engine.flows` moves the money); the only loops run over tiers, tier
pairs and the recomputation passes, never over pools or holders.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction

import numpy as np
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.flows import (
    DONOR,
    HOLD,
    PAUSE,
    RECIPIENT,
    Orders,
    explain,
    move_money,
)
from budget_pipeline.engine.holders import (
    budget_holders,
    num,
    with_blocks,
    with_min_budget,
    with_scores,
)
from budget_pipeline.engine.plan_text import allocation_reasons, plan_id_for
from budget_pipeline.money import to_minor

PROPOSALS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "target_budget": pl.Int64(),  # null: no move wanted
    "pause": pl.Boolean(),
    "merit": pl.Float64(),  # higher = deserves money first; null = 0
    "trigger": pl.Utf8(),  # the rule or signal behind the proposal, if any
    "score": pl.Float64(),  # the composite score shown with it, if any
    "why": pl.Utf8(),  # the policy's reason in words, with its numbers
}

_PASSES = 64


def allocate(
    entities: pl.DataFrame,
    proposals: pl.DataFrame,
    config: PoolsConfig,
    *,
    as_of: datetime,
    last_changes: pl.DataFrame | None = None,
    min_budgets: pl.DataFrame | None = None,
    in_learning: pl.DataFrame | None = None,
    held_pools: Mapping[str, str] | None = None,
    scores: pl.DataFrame | None = None,
    score_exempt_pools: tuple[str, ...] = (),
    closed_pools: tuple[str, ...] = (),
    scope: str = "",
    holders: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The plan (contracts.PLAN) for every budget holder of ``entities`` in a pool.

    ``scores`` (contracts.SCORES): a holder whose latest score is ``insufficient_data`` is never
    moved, except in ``score_exempt_pools``. Money of ``closed_pools`` stays in the pool (a
    Meta rule's pool). ``holders``: ``budget_holders(entities, config)`` if the caller has it
    already. The other inputs as in :func:`~budget_pipeline.engine.holders.with_blocks`.
    """
    settings = config.settings
    frame = budget_holders(entities, config) if holders is None else holders
    if frame.height == 0:
        return contracts.empty(contracts.PLAN)
    props = contracts.conform(proposals, PROPOSALS).unique("entity_id", keep="last")
    frame = frame.join(props, on="entity_id", how="left").with_columns(
        pl.col("pause").fill_null(False), pl.col("merit").fill_null(0.0).fill_nan(0.0)
    )
    frame = with_scores(frame, scores, as_of, score_exempt_pools)
    frame = with_blocks(frame, config, as_of, last_changes, in_learning, held_pools)
    frame = with_min_budget(frame, min_budgets, config.min_adset_budget_minor)
    cap_pct = min(settings.learning_cap_pct, settings.learning_limit_pct)
    cap = Fraction(repr(float(cap_pct))).limit_denominator(10_000)
    old = pl.col("old_budget")
    target = pl.col("target_budget")
    free = pl.col("block").is_null()
    frame = frame.with_columns(
        cap_minor=old * cap.numerator // (100 * cap.denominator),
        room_min=(old - pl.col("min_budget")).clip(0, None),
        min_move=pl.max_horizontal(
            pl.lit(to_minor(settings.min_move, config.currency), dtype=pl.Int64),
            (old.cast(pl.Float64) * settings.min_move_pct / 100.0).ceil().cast(pl.Int64),
        ),
        wants_pause=free & pl.col("pause"),
        role=pl.when(free & pl.col("pause"))
        .then(PAUSE)
        .when(free & target.is_not_null() & (target < old))
        .then(DONOR)
        .when(free & target.is_not_null() & (target > old))
        .then(RECIPIENT)
        .otherwise(HOLD),
    )
    pools = sorted(frame["pool"].unique().to_list())
    pool_idx = frame["pool"].replace_strict(pools, list(range(len(pools)))).to_numpy()
    tier = np.array([config.by_name[p].tier for p in pools], dtype=np.int64)
    old_np = frame["old_budget"].to_numpy().astype(np.int64)
    before = np.bincount(pool_idx, weights=old_np, minlength=len(pools)).astype(np.int64)
    floors = np.array([config.floor_minor(p) for p in pools], dtype=np.int64)
    ceilings = np.array([config.ceiling_minor(p) for p in pools], dtype=np.int64)
    # Money crosses pools only inside a market: pools of the same mode (a live pool's money must
    # never fund a pool that only observes, or the account loses it), and a closed pool alone.
    kill = settings.kill_switch
    market_names = [
        f"closed:{p}" if p in closed_pools else ("observe" if kill else config.by_name[p].mode)
        for p in pools
    ]
    market = np.unique(np.array(market_names), return_inverse=True)[1].astype(np.int64)
    role = frame["role"].to_numpy().copy()
    target_np = frame["target_budget"].fill_null(0).to_numpy().astype(np.int64)
    cap_np = frame["cap_minor"].to_numpy().astype(np.int64)
    room_min = frame["room_min"].to_numpy().astype(np.int64)
    merit = frame["merit"].to_numpy().astype(np.float64)
    min_move = frame["min_move"].to_numpy().astype(np.int64)
    crumb = np.zeros(len(role), dtype=bool)
    pause_waits = np.zeros(len(role), dtype=bool)
    orders = Orders.of(pool_idx, tier, market, role, merit)
    # Each pass turns at least one holder into a hold or a cut for good, so it settles in at
    # most one pass per holder (a large account with many near-equal holders needs hundreds).
    for _ in range(max(_PASSES, len(role) + 1)):
        offer = np.where(
            role == DONOR,
            np.minimum(np.minimum(old_np - target_np, cap_np), room_min),
            np.where(role == PAUSE, old_np, 0),
        ).clip(0, None)
        want = np.where(role == RECIPIENT, np.minimum(target_np - old_np, cap_np), 0).clip(0, None)
        orders = orders.with_roles(pool_idx, role, merit)
        flows = move_money(
            pool_idx, tier, market, role, merit, offer, want, before, floors, ceilings,
            settings.cross_tier_margin, orders,
        )  # fmt: skip
        # A pause whose money cannot all be placed waits: one capped cut toward it instead.
        unplaced = (role == PAUSE) & (flows.given < old_np)
        moved = np.where(role == PAUSE, 0, np.maximum(flows.given, flows.taken))
        small = (moved > 0) & (moved < min_move) & ~unplaced
        if not unplaced.any() and not small.any():
            break
        # A step that can never reach the minimum move sits out at once; one cut short by
        # scarce money only if it is its pool's last in line (the money may reach the minimum
        # for the others once it is out).
        never = small & (np.maximum(offer, want) < min_move)
        if small.any() and not never.any():
            priority = np.where(role == RECIPIENT, merit, -merit)  # lowest goes first
            rows = np.flatnonzero(small)
            last = rows[np.lexsort((priority[rows], pool_idx[rows]))]
            first_of_pool = np.r_[True, pool_idx[last][1:] != pool_idx[last][:-1]]
            never[last[first_of_pool]] = True
        small = never
        role = np.where(unplaced, DONOR, np.where(small, HOLD, role))
        target_np = np.where(unplaced, 0, target_np)
        pause_waits |= unplaced
        crumb |= small
    else:
        raise RuntimeError(f"allocation did not settle in {_PASSES} passes")
    held_back = explain(
        flows, pool_idx, tier, market, merit, offer, want, settings.cross_tier_margin, orders
    )
    frame = frame.with_columns(
        role=pl.Series(role, dtype=pl.Int64),
        given=pl.Series(flows.given, dtype=pl.Int64),
        taken=pl.Series(flows.taken, dtype=pl.Int64),
        offer=pl.Series(offer, dtype=pl.Int64),
        want=pl.Series(want, dtype=pl.Int64),
        route=pl.Series(flows.route, dtype=pl.Int64),
        floor_hit=pl.Series(held_back["floor_hit"]),
        ceiling_hit=pl.Series(held_back["ceiling_hit"]),
        margin_blocked=pl.Series(held_back["margin_blocked"]),
        crumb=pl.Series(crumb),
        pause_waits=pl.Series(pause_waits),
        pool_floor=pl.Series(floors[pool_idx], dtype=pl.Int64),
        pool_ceiling=pl.Series(ceilings[pool_idx], dtype=pl.Int64),
    )
    plan = _finish(frame, config, cap_pct)
    return contracts.conform(
        plan.with_columns(plan_id=pl.lit(plan_id_for(plan, as_of, scope))), contracts.PLAN
    )


def _finish(frame: pl.DataFrame, config: PoolsConfig, cap_pct: float) -> pl.DataFrame:
    role, old = pl.col("role"), pl.col("old_budget")
    is_pause = role == PAUSE
    new = pl.when(is_pause).then(old).otherwise(old - pl.col("given") + pl.col("taken"))
    moved = (pl.col("given") > 0) | (pl.col("taken") > 0)
    action = (
        pl.when(is_pause)
        .then(pl.lit("pause"))
        .when((role == DONOR) & moved)
        .then(pl.lit("decrease"))
        .when((role == RECIPIENT) & moved)
        .then(pl.lit("increase"))
        .otherwise(pl.lit("hold"))
    )
    wanted_target = pl.when(pl.col("pause_waits")).then(0).otherwise(pl.col("target_budget"))
    frame = frame.with_columns(new_budget=new, action=action)
    return frame.with_columns(
        delta=pl.col("new_budget") - old,
        target_budget=pl.when(role.is_in([DONOR, RECIPIENT]) & moved)
        .then(wanted_target)
        .otherwise(pl.col("new_budget")),
        pause=is_pause,
        reason=allocation_reasons(
            frame, config.currency, num(cap_pct), config.settings.cross_tier_margin
        ),
        plan_id=pl.lit(""),
    )
