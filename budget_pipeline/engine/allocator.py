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

Vectorised over holders (numpy/polars); the only loops run over tiers, tier pairs and a few
recomputation passes, never over holders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import numpy as np
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.holders import (
    budget_holders,
    num,
    with_blocks,
    with_min_budget,
    with_scores,
)
from budget_pipeline.engine.plan_text import allocation_reason, plan_id_for
from budget_pipeline.money import largest_remainder_split, to_minor

PROPOSALS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "target_budget": pl.Int64(),  # null: no move wanted
    "pause": pl.Boolean(),
    "merit": pl.Float64(),  # higher = deserves money first; null = 0
    "trigger": pl.Utf8(),  # the rule or signal behind the proposal, if any
    "score": pl.Float64(),  # the composite score shown with it, if any
    "why": pl.Utf8(),  # the policy's reason in words, with its numbers
}

HOLD, PAUSE, DONOR, RECIPIENT = 0, 1, 2, 3
SAME_POOL, SAME_TIER, CROSS_TIER = 1, 2, 4
MERIT_EPS = 1e-9
_PASSES = 64


@dataclass
class _Flows:
    given: np.ndarray
    taken: np.ndarray
    route: np.ndarray
    floor_hit: np.ndarray  # per holder: its pool kept offers back at its floor
    ceiling_hit: np.ndarray
    margin_blocked: np.ndarray


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
) -> pl.DataFrame:
    """The plan (contracts.PLAN) for every budget holder of ``entities`` in a pool.

    ``scores`` (contracts.SCORES): a holder whose latest score is ``insufficient_data`` is never
    moved, except in ``score_exempt_pools``. Money of ``closed_pools`` stays in the pool (a
    Meta rule's pool). The other inputs as in :func:`~budget_pipeline.engine.holders.with_blocks`.
    """
    settings = config.settings
    frame = budget_holders(entities, config)
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
    # Each pass turns at least one holder into a hold or a cut for good, so it settles in at
    # most one pass per holder (a large account with many near-equal holders needs hundreds).
    for _ in range(max(_PASSES, len(role) + 1)):
        offer = np.where(
            role == DONOR,
            np.minimum(np.minimum(old_np - target_np, cap_np), room_min),
            np.where(role == PAUSE, old_np, 0),
        ).clip(0, None)
        want = np.where(role == RECIPIENT, np.minimum(target_np - old_np, cap_np), 0).clip(0, None)
        flows = _flows(
            pool_idx, tier, market, role, merit, offer, want, before, floors, ceilings,
            settings.cross_tier_margin,
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
    frame = frame.with_columns(
        role=pl.Series(role, dtype=pl.Int64),
        given=pl.Series(flows.given, dtype=pl.Int64),
        taken=pl.Series(flows.taken, dtype=pl.Int64),
        offer=pl.Series(offer, dtype=pl.Int64),
        want=pl.Series(want, dtype=pl.Int64),
        route=pl.Series(flows.route, dtype=pl.Int64),
        floor_hit=pl.Series(flows.floor_hit),
        ceiling_hit=pl.Series(flows.ceiling_hit),
        margin_blocked=pl.Series(flows.margin_blocked),
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
        reason=allocation_reason(config.currency, num(cap_pct), config.settings.cross_tier_margin),
        plan_id=pl.lit(""),
    )


def _greedy(group: np.ndarray, amount: np.ndarray, key: np.ndarray, totals: np.ndarray):
    """Per group, take ``totals[g]`` from its rows in ascending ``key`` order (each row at most
    its ``amount``); rows of equal key share in proportion to their amounts (largest
    remainder), so the result does not depend on row order. Returns each row's part."""
    parts = np.zeros(len(amount), dtype=np.int64)
    rows = np.flatnonzero(amount > 0)
    if rows.size == 0:
        return parts
    order = rows[np.lexsort((key[rows], group[rows]))]
    g, k, a = group[order], key[order], amount[order]
    # tiers: runs of equal (group, key); each tier is served whole or not at all, but one
    new_tier = np.r_[True, (g[1:] != g[:-1]) | (k[1:] != k[:-1])]
    tier = np.cumsum(new_tier) - 1
    tier_sum = np.bincount(tier, weights=a).astype(np.int64)
    tier_group = g[new_tier]
    cum = np.cumsum(tier_sum)
    first_of_group = np.r_[True, tier_group[1:] != tier_group[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_group, np.arange(len(cum)), 0))
    before = cum - tier_sum - (cum[group_start] - tier_sum[group_start])
    tier_alloc = np.clip(totals[tier_group] - before, 0, tier_sum)
    share = np.where(tier_alloc[tier] == tier_sum[tier], a, 0)
    for t in np.flatnonzero((tier_alloc > 0) & (tier_alloc < tier_sum)):  # ≤ one per group
        members = np.flatnonzero(tier == t)
        share[members] = _capped_split(int(tier_alloc[t]), a[members])
    parts[order] = share
    return parts


def _sums(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, group, values.astype(np.int64))
    return out


def _flows(
    pool, tier, market, role, merit, offer, want, before, floors, ceilings, margin
) -> _Flows:
    n_pools = len(tier)
    given = np.zeros(len(role), dtype=np.int64)
    taken = np.zeros(len(role), dtype=np.int64)
    route = np.zeros(len(role), dtype=np.int64)
    # pauses give first; donors from the lowest merit up; recipients from the highest down
    give_key = np.where(role == PAUSE, -np.inf, merit)
    take_key = -merit
    room_down = np.maximum(before - floors, 0)
    room_up = np.maximum(ceilings - before, 0)

    def left_offer() -> np.ndarray:
        return offer - given

    def left_want() -> np.ndarray:
        return want - taken

    # 1. within each pool: its total does not change
    total = np.minimum(_sums(pool, offer, n_pools), _sums(pool, want, n_pools))
    g = _greedy(pool, offer, give_key, total)
    t = _greedy(pool, want, take_key, total)
    given += g
    taken += t
    route[(g > 0) | (t > 0)] |= SAME_POOL
    # 2. across pools of one tier and market, within each pool's room
    for level, mk in sorted({(int(a), int(b)) for a, b in zip(tier, market, strict=True)}):
        in_group = (tier == level) & (market == mk)
        supply = np.where(in_group, np.minimum(_sums(pool, left_offer(), n_pools), room_down), 0)
        demand = np.where(in_group, np.minimum(_sums(pool, left_want(), n_pools), room_up), 0)
        flow = int(min(supply.sum(), demand.sum()))
        if flow <= 0:
            continue
        out = _capped_split(flow, supply)
        inn = _capped_split(flow, demand)
        g = _greedy(pool, left_offer(), give_key, out)
        t = _greedy(pool, left_want(), take_key, inn)
        given += g
        taken += t
        route[(g > 0) | (t > 0)] |= SAME_TIER
        room_down -= out
        room_up -= inn
    # 3. across tiers of one market: only to a recipient clearly better than its donor
    levels = np.unique(tier)
    pairs = sorted(
        (abs(a - b), b, a, mk)
        for mk in np.unique(market).tolist()
        for a in np.unique(tier[market == mk]).tolist()
        for b in np.unique(tier[market == mk]).tolist()
        if a != b
    )
    for _, to_tier, from_tier, mk in pairs:
        in_market = market[pool] == mk
        donors = np.flatnonzero((tier[pool] == from_tier) & (left_offer() > 0) & in_market)
        takers = np.flatnonzero((tier[pool] == to_tier) & (left_want() > 0) & in_market)
        if not donors.size or not takers.size:
            continue
        d_left = _within_room(pool, donors, left_offer(), give_key, room_down, n_pools)
        r_left = _within_room(pool, takers, left_want(), take_key, room_up, n_pools)
        gives, takes = _nested_flow(merit[donors], d_left, merit[takers], r_left, margin)
        given[donors] += gives
        taken[takers] += takes
        route[donors[gives > 0]] |= CROSS_TIER
        route[takers[takes > 0]] |= CROSS_TIER
        room_down -= _sums(pool[donors], gives, n_pools)
        room_up -= _sums(pool[takers], takes, n_pools)
    offers_left, wants_left = _sums(pool, left_offer(), n_pools), _sums(pool, left_want(), n_pools)
    floor_hit = (offers_left > 0) & (room_down == 0) & (wants_left.sum() - wants_left > 0)
    ceiling_hit = (wants_left > 0) & (room_up == 0) & (offers_left.sum() - offers_left > 0)
    blocked = np.zeros(len(role), dtype=bool)
    short = left_want() > 0
    if short.any() and (left_offer() > 0).any():
        for level in levels:
            for mk in np.unique(market).tolist():
                others = (
                    (tier[pool] != level)
                    & (left_offer() > 0)
                    & (room_down[pool] > 0)
                    & (market[pool] == mk)
                )
                if others.any():
                    lowest = merit[others].min()
                    mine = short & (tier[pool] == level) & (market[pool] == mk)
                    blocked |= mine & (merit - lowest < margin - MERIT_EPS)
    return _Flows(given, taken, route, floor_hit[pool], ceiling_hit[pool], blocked)


def _capped_split(total: int, caps: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` (≤ caps.sum()) in proportion to ``caps``."""
    if total <= 0 or caps.sum() <= 0:
        return np.zeros(len(caps), dtype=np.int64)
    parts = largest_remainder_split(total, caps)
    over = np.maximum(parts - caps, 0)
    if over.any():  # float shares may put one unit over a cap: give it to rows with room
        parts = parts - over
        room = np.cumsum(caps - parts)
        parts = parts + np.diff(np.r_[0, np.minimum(room, int(over.sum()))])
    return parts


def _within_room(pool, rows, left, key, room, n_pools) -> np.ndarray:
    """``left`` of ``rows``, cut so that each pool's rows add up to at most its room (the
    rows earliest in ``key`` order keep theirs)."""
    amounts = np.zeros(len(left), dtype=np.int64)
    amounts[rows] = left[rows]
    totals = np.minimum(_sums(pool, amounts, n_pools), np.maximum(room, 0))
    return _greedy(pool, amounts, key, totals)[rows]


def _nested_flow(d_merit, d_left, r_merit, r_left, margin) -> tuple[np.ndarray, np.ndarray]:
    """Cross-tier flow where donor i may fund recipient j only if ``merit_j − merit_i ≥ margin``.

    A recipient's eligible donors are a prefix of the donors sorted by merit, so serving
    recipients from the lowest merit up, each as much as its prefix still holds, is a maximum
    flow: cumulative takes ``T_j = min(T_{j−1} + w_j, P_j)``, in closed form; donors give from
    the lowest merit up, which keeps every take inside its eligible prefix.
    """
    do = np.argsort(d_merit, kind="stable")
    ro = np.argsort(r_merit, kind="stable")
    prefix = np.r_[0, np.cumsum(d_left[do])]
    reach = np.searchsorted(d_merit[do], r_merit[ro] - margin + MERIT_EPS, side="right")
    wants = np.cumsum(r_left[ro])
    cum_take = wants + np.minimum.accumulate(np.minimum(0, prefix[reach] - wants))
    placed = int(cum_take[-1]) if cum_take.size else 0
    takes = np.zeros(len(r_left), dtype=np.int64)
    takes[ro] = np.diff(np.r_[0, cum_take])
    gives = np.zeros(len(d_left), dtype=np.int64)
    gives[do] = np.diff(np.r_[0, np.minimum(prefix[1:], placed)])
    return gives, takes
