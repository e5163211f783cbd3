"""The marginal-return policy: money goes where the next euro earns the most (the default).

Per budget holder, the fitted response curve (:mod:`~budget_pipeline.engine.response_curves`)
gives the marginal return at today's budget. The policy proposes the allocation that equalises
marginal returns — within each pool's floor and ceiling, the account's money conserved — and the
:mod:`~budget_pipeline.engine.allocator` walks there in capped steps, re-measuring every cycle,
so the plan converges where the *measured* marginal returns meet.

It moves only on credible differences (statistical gating): a holder proposes a change only
when its marginal return differs from its pool's equilibrium by more than ``gate_z`` posterior
standard deviations, and by at least ``dead_band`` of its budget. The composite score (the
seed's signals against each holder's own baseline) explains and gates every move: a holder
whose score collapsed below its pool's pause threshold with a credibly lower ROAS is not given
more money, one above the increase threshold with a credibly higher ROAS is not cut. It never
pauses: a weak holder is cut step by step toward its minimum budget and regains money as soon
as its marginal return is credibly higher again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import PROPOSALS
from budget_pipeline.engine.holders import budget_holders
from budget_pipeline.engine.response_curves import (
    budget_at,
    holder_curves,
    log_marginal,
    marginal_terms,
)
from budget_pipeline.money import minor_factor

POLICY = "marginal_return"
_BISECTION = 80


@dataclass(frozen=True)
class MarginalSettings:
    half_life_days: float = 10.0  # recency of the curve fit
    gate_z: float = 1.0  # posterior sds a marginal return must differ by to move
    dead_band: float = 0.03  # a target within this share of the budget is no move
    # sd of log e: the curvature is a prior (0.5–0.7 is typical), so pools' marginal returns
    # are compared with that much doubt
    elasticity_sd: float = 0.15


def _solve_log_lambda(
    group: np.ndarray,
    n_groups: int,
    curve: tuple[np.ndarray, np.ndarray],
    lo_budget: np.ndarray,
    totals: np.ndarray,
) -> np.ndarray:
    """Per group, the log marginal return λ at which its holders' budgets (each at least
    ``lo_budget``; ``curve``: :func:`marginal_terms`) add up to ``totals`` (bisection,
    vectorised over groups)."""
    lo = np.full(n_groups, -40.0)
    hi = np.full(n_groups, 40.0)
    for _ in range(_BISECTION):
        mid = (lo + hi) / 2
        budgets = np.maximum(budget_at(curve, mid[group]), lo_budget)
        spent = np.bincount(group, weights=budgets, minlength=n_groups)
        too_much = spent > totals  # λ too low: raise it
        new_lo, new_hi = np.where(too_much, mid, lo), np.where(too_much, hi, mid)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break  # a step that changes nothing changes nothing ever after (_BISECTION steps)
        lo, hi = new_lo, new_hi
    return (lo + hi) / 2


def _pool_mean(
    merit: np.ndarray, sd: np.ndarray, movable: np.ndarray, p_idx: np.ndarray, n_pools: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pool, the precision-weighted mean of its movable holders' ``merit`` (0 where a pool
    has none) and the summed precision."""
    precision = np.where(movable & (sd > 0), 1.0 / np.maximum(sd, 1e-9) ** 2, 0.0)
    weight = np.bincount(p_idx, weights=precision, minlength=n_pools)
    total = np.bincount(p_idx, weights=precision * np.nan_to_num(merit), minlength=n_pools)
    return np.divide(total, weight, out=np.zeros(n_pools), where=weight > 0), weight


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
    curve = marginal_terms(curves[idx])
    group, floor_budget = p_idx[idx], low[idx]
    # 1. across pools: one marginal return for the account, each pool clamped to its bounds
    lo_g, hi_g = -40.0, 40.0
    total = budget.sum()
    for _ in range(_BISECTION):
        mid = (lo_g + hi_g) / 2
        b = np.maximum(budget_at(curve, mid), floor_budget)
        per_pool = np.bincount(group, weights=b, minlength=len(pools))
        step = (mid, hi_g) if np.clip(per_pool, lo_pool, hi_pool).sum() > total else (lo_g, mid)
        if step == (lo_g, hi_g):
            break  # converged to the float: every further step would change nothing
        lo_g, hi_g = step
    b = np.maximum(budget_at(curve, hi_g), floor_budget)
    per_pool = np.clip(np.bincount(group, weights=b, minlength=len(pools)), lo_pool, hi_pool)
    # rounding of the clamp may leave the total a hair off: scale the unclamped pools
    per_pool *= total / per_pool.sum() if per_pool.sum() > 0 else 1.0
    # 2. within each pool: its total at one marginal return
    log_lam = _solve_log_lambda(group, len(pools), curve, floor_budget, per_pool)
    targets = old.copy()
    targets[idx] = np.maximum(budget_at(curve, log_lam[group]), floor_budget)
    lam = np.full(len(old), np.nan)
    lam[idx] = log_lam[group]
    factor = np.where(budget > 0, per_pool / np.where(budget > 0, budget, 1.0), 1.0)
    return targets, lam, factor[p_idx], p_idx, hi_g


def propose_marginal(
    entities: pl.DataFrame,
    scores: pl.DataFrame,
    daily: pl.DataFrame,
    config: PoolsConfig,
    *,
    as_of: datetime,
    pools: list[str],
    min_budgets: pl.DataFrame | None = None,
    settings: MarginalSettings | None = None,
    holders: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """PROPOSALS for the holders of ``pools`` (the pools whose policy is this one).

    ``daily``: per ad set and day (response_curves.daily_performance); ``scores``:
    contracts.SCORES at ``as_of`` (status and score per holder); ``holders``:
    ``budget_holders(entities, config)`` if the caller has it already.
    """
    settings = settings or MarginalSettings()
    factor = minor_factor(config.currency)
    if holders is None:
        holders = budget_holders(entities, config)
    holders = holders.filter(pl.col("pool").is_in(pools))
    if holders.height == 0:
        return contracts.empty(PROPOSALS)
    latest = scores.sort("as_of").unique("entity_id", keep="last")
    frame = holders.join(
        latest.select("entity_id", pl.col("status").alias("score_status"), "score", "evidence_z"),
        on="entity_id",
        how="left",
    )
    mins = (
        min_budgets.group_by("entity_id").agg(pl.col("min_budget").max())
        if min_budgets is not None
        else pl.DataFrame(schema={"entity_id": pl.Utf8, "min_budget": pl.Int64})
    )
    frame = (
        frame.join(mins, on="entity_id", how="left")
        .with_columns(pl.col("min_budget").fill_null(config.min_adset_budget_minor))
        .with_columns(
            movable=(pl.col("status") == "ACTIVE").fill_null(False)
            & ~pl.col("is_locked")
            & (pl.col("score_status") == "scored").fill_null(False)
        )
        .sort("pool", "entity_id")
    )
    curve_in = frame.select(pl.col("entity_id").alias("holder_id"), "entity_type", "pool")
    curves = holder_curves(
        daily,
        curve_in,
        as_of=as_of,
        half_life_days=settings.half_life_days,
        elasticity={p.name: p.response_elasticity for p in config.pools},
    )
    # the curves come sorted by pool and holder id, as ``frame`` is: joined only if they differ
    if not curves["holder_id"].equals(frame["entity_id"], check_names=False):
        curves = frame.select(pl.col("entity_id").alias("holder_id")).join(
            curves, on="holder_id", how="left", maintain_order="left"
        )
    # a holder that spent nothing in the window has no curve of its own (at most its pool's
    # guess): nothing to measure a move by, so it is held and left out of the equilibrium
    has_curve = (
        curves["log_level"].is_not_null()
        & curves["log_level"].is_finite()
        & (curves["days"].fill_null(0) > 0)
    )
    frame = frame.with_columns(
        has_curve=has_curve.fill_null(False), movable_before=pl.col("movable")
    ).with_columns(movable=pl.col("movable") & pl.col("has_curve"))
    old_major = frame["old_budget"].to_numpy() / factor
    targets, log_lam, pool_factor, p_idx, log_global = _equal_marginal_targets(
        frame, curves, config
    )
    merit = log_marginal(curves, old_major)
    sd = curves["log_level_sd"].to_numpy()
    movable = frame["movable"].to_numpy()
    # Two decisions, each on its own evidence. Between pools: a pool's precision-weighted
    # marginal return against the account's balance, known far better than any one holder's;
    # if any pool is credibly off, every pool walks toward its balanced total (money must come
    # from somewhere). Within a pool: a holder's marginal return against its pool's.
    n_pools = int(p_idx.max()) + 1 if p_idx.size else 0
    pool_merit, weight = _pool_mean(merit, sd, movable, p_idx, n_pools)
    # a pool's marginal return also rests on its assumed curvature e: comparing pools, that
    # uncertainty (elasticity_sd on log e) does not average out over the pool's holders
    pool_sd = np.sqrt(1.0 / np.maximum(weight, 1e-12) + settings.elasticity_sd**2)
    pool_z = np.divide(pool_merit - log_global, pool_sd, out=np.zeros(n_pools), where=weight > 0)
    shift = np.abs(np.log(np.maximum(pool_factor, 1e-9)))
    pools_move = bool(
        (np.abs(pool_z) >= settings.gate_z)[np.unique(p_idx[movable])].any()
        and (shift[movable] >= settings.dead_band).any()
    )
    follow = old_major * (pool_factor if pools_move else 1.0)
    # within a pool, a holder's marginal return rests on its level and on its own curvature
    # (e_h · ROAS): a ROAS gap its curvature's doubt can explain is no credible difference
    e_sd = curves["elasticity_sd"].to_numpy() / curves["elasticity"].to_numpy()
    own_sd = np.sqrt(sd**2 + np.nan_to_num(e_sd) ** 2)
    own_ref, _ = _pool_mean(merit, own_sd, movable, p_idx, n_pools)
    z = (merit - own_ref[p_idx]) / np.where(own_sd > 0, own_sd, np.inf)
    # A credible difference needs a counterpart: one holder credibly above its pool's return
    # is funded by those below it (each only a share of the gap, none credible alone), one
    # credibly below gives to those above. A pool with no credible holder moves nothing.
    credible = movable & (np.abs(z) >= settings.gate_z)
    up_pool = np.bincount(p_idx, weights=credible & (z > 0), minlength=n_pools) > 0
    down_pool = np.bincount(p_idx, weights=credible & (z < 0), minlength=n_pools) > 0
    counterpart = (
        movable
        & ~credible
        & (
            (up_pool[p_idx] & (z < 0) & (targets < follow))
            | (down_pool[p_idx] & (z > 0) & (targets > follow))
        )
    )
    targets = np.where(credible | counterpart, targets, follow)
    change = targets / np.maximum(old_major, 1e-9) - 1.0
    out = frame.with_columns(
        merit=pl.Series(merit),
        eq=pl.Series(log_lam),
        z=pl.Series(z),
        counterpart=pl.Series(counterpart),
        pool_shift=pl.Series((pool_factor if pools_move else np.ones_like(pool_factor)) - 1.0),
        change=pl.Series(change),
        target_major=pl.Series(targets),
        roas=pl.Series(np.exp(merit) / curves["elasticity"].to_numpy()),
        conversions=curves["recent_conversions"],
        pooled=curves["pooled_weight"],
    )
    thresholds = pl.DataFrame(
        {
            "pool": [p.name for p in config.pools],
            "up_block": [p.thresholds.pause_below for p in config.pools],
            "down_block": [p.thresholds.increase_above for p in config.pools],
            "credible_z": [p.thresholds.credible_z for p in config.pools],
        }
    )
    out = out.join(thresholds, on="pool", how="left")
    up, down = pl.col("change") > 0, pl.col("change") < 0
    credible = pl.col("change").abs() >= settings.dead_band
    # The score gates: no more money for a holder whose score has collapsed (below the pause
    # threshold, credibly), no cut for one credibly above its increase threshold (its change
    # may not show in its marginal return yet). A merely lower ROAS after an increase is the
    # curve's diminishing return, not a reason to stop.
    evidence = pl.col("evidence_z").fill_null(0.0)
    score_blocks = (
        up & (pl.col("score") < pl.col("up_block")) & (evidence <= -pl.col("credible_z"))
    ) | (down & (pl.col("score") > pl.col("down_block")) & (evidence >= pl.col("credible_z")))
    move = pl.col("movable") & credible & ~score_blocks.fill_null(False)
    target = (pl.col("target_major") * factor).round(0).cast(pl.Int64)
    out = out.with_columns(**_why_parts(settings)).with_columns(
        target_budget=pl.when(move).then(target).otherwise(None),
        why=_why(config.currency, settings, score_blocks.fill_null(False), credible),
    )
    return out.select(
        "entity_id",
        "target_budget",
        pl.lit(False).alias("pause"),
        pl.col("merit").fill_nan(None),
        pl.lit(POLICY).alias("trigger"),
        "score",
        "why",
    ).cast(PROPOSALS)  # type: ignore[arg-type]


def _num(expr: pl.Expr, decimals: int = 2) -> pl.Expr:
    return expr.round(decimals).cast(pl.Utf8)


def _why_parts(settings: MarginalSettings) -> dict[str, pl.Expr]:
    """The pieces of :func:`_why` that several of its branches print, formatted once (every
    branch of a ``when`` is worked out on every row: formatted in each, they cost twice)."""
    pool_part = pl.when(pl.col("pool_shift").abs() >= settings.dead_band).then(
        pl.format("its pool {} {} %", pl.when(pl.col("pool_shift") > 0).then(pl.lit("grows"))
                  .otherwise(pl.lit("shrinks")), _num(pl.col("pool_shift").abs() * 100, 0))
    )  # fmt: skip
    z_text = _num(pl.col("z").abs(), 1)
    own_part = (
        pl.when(pl.col("z").abs() >= settings.gate_z)
        .then(pl.format("its own return is {} sd off its pool's", z_text))
        .when(pl.col("counterpart") & (pl.col("z") < 0))
        .then(pl.lit("it funds an ad set credibly better than its pool"))
        .when(pl.col("counterpart"))
        .then(pl.lit("it takes what an ad set credibly worse than its pool gives up"))
    )
    return {
        "why_because": pl.concat_str([pool_part, own_part], separator="; ", ignore_nulls=True),
        "why_target": _num(pl.col("target_major")),
        "why_z": z_text,
    }


def _why(currency: str, settings: MarginalSettings, score_blocks, credible) -> pl.Expr:
    marginal = pl.col("merit").exp()
    equilibrium = pl.col("eq").exp()
    head = pl.format(
        "marginal return {} {} per {} vs {} at its pool's balance (ROAS {}, {} recent "
        "purchases{}{})",
        _num(marginal),
        pl.lit(currency),
        pl.lit(currency),
        _num(equilibrium),
        _num(pl.col("roas")),
        pl.col("conversions").round(0).cast(pl.Int64),
        pl.when(pl.col("pooled") > 0.5)
        .then(pl.lit(", judged mostly by its pool"))
        .otherwise(pl.lit("")),
        pl.when(pl.col("score").is_not_null())
        .then(pl.format("; score {}", _num(pl.col("score"))))
        .otherwise(pl.lit("")),
    )
    because, target = pl.col("why_because"), pl.col("why_target")  # _why_parts
    verdict = (
        pl.when(~pl.col("has_curve") & pl.col("movable_before"))
        .then(pl.lit("not moved: no spend in the curve window, nothing to measure a move by"))
        .when(~pl.col("movable"))
        .then(pl.lit("not moved (unscored, paused or locked)"))
        .when(~credible)
        .then(
            pl.format(
                "no move: within the noise ({} sd from its pool's return, moves from {}; "
                "no credible pool shift)",
                pl.col("why_z"),
                pl.lit(f"{settings.gate_z:g}"),
            )
        )
        .when(score_blocks & (pl.col("change") > 0))
        .then(pl.lit("no increase: its score collapsed, credibly (below the pause threshold)"))
        .when(score_blocks)
        .then(pl.lit("no cut: its score is credibly above its usual (increase threshold)"))
        .when(pl.col("change") > 0)
        .then(pl.format("more money ({}): toward {} a day", because, target))
        .otherwise(pl.format("less money ({}): toward {} a day", because, target))
    )
    return (
        pl.when(pl.col("has_curve"))
        .then(pl.concat_str([head, verdict], separator=": "))
        .otherwise(verdict)
    )
