"""The rebalance planner: fired trigger actions → one conserving budget plan (SPEC §5, §7).

:func:`plan_rebalance` turns the cycle's trigger actions into a :data:`contracts.PLAN` frame with
one row per budget holder in a pool (an ad set with its own daily budget, or a CBO campaign),
moved or not. Lifetime-budget entities are left out: their money is a different bucket (a
lifetime total with ``budget_remaining``), and pool floors and ceilings are daily amounts.

How money moves, in order:

1. Each entity's *effective* action: pause > decrease (largest pct) > increase (largest pct).
   ``alert`` / ``flag_creative`` move no money; they are named in the reason.
2. Entities that must not move are held: locked, unscored / insufficient_data, not ACTIVE,
   changed less than ``min_change_interval_hours`` ago or edited ``max_changes_per_hour``
   times in the last hour, or still learning (when ``skip_learning``).
3. A pause keeps its stored budget. A decrease *offers* ``min(old − target, cap, old − min)``
   where ``cap = floor(old × learning_cap_pct / 100)``; an increase *wants*
   ``min(target − old, cap)``. The rest of a trigger's target is a glide path for later cycles.
4. Offers meet wants in four stages, each conserving money to the minor unit:
   same pool → other pools of the same tier → other tiers (only donor/recipient pairs whose
   score gap ≥ ``cross_tier_margin``) → same-pool entities scoring above 0.5 that absorb what is
   left, in proportion to ``score − 0.5`` and within their own cap. Cross-pool moves are limited
   by each pool's room above its floor and below its ceiling (a pool already outside its bounds
   may only move toward them). Splits use :func:`money.largest_remainder_split`; donations
   shrink to what is placed, and increases with nothing placed are held ("no donor").

Everything is vectorised over entities; the only Python loops run over pools and tiers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

import numpy as np
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.money import format_money, largest_remainder_split, minor_factor

# Score comparisons against the cross-tier margin tolerate float noise (0.9 − 0.8 < 0.1).
SCORE_EPS = 1e-9

# Roles an entity plays in this cycle.
HOLD, PAUSE, DONOR, RECIPIENT, ABSORBER = 0, 1, 2, 3, 4
# Where a donor's money went / a recipient's money came from (bit mask).
SAME_POOL, SAME_TIER, CROSS_TIER, ABSORBED = 1, 2, 4, 8

_MONEY_ACTIONS = ("pause", "decrease", "increase")
_ALL_ACTIONS = (*_MONEY_ACTIONS, "alert", "flag_creative")


def plan_rebalance(
    entities: pl.DataFrame,
    scores: pl.DataFrame,
    actions: pl.DataFrame,
    config: PoolsConfig,
    *,
    as_of: datetime,
    last_changes: pl.DataFrame | None = None,
    min_budgets: pl.DataFrame | None = None,
    in_learning: pl.DataFrame | None = None,
    held_pools: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Plan this cycle's budget moves (contracts.PLAN), one row per budget holder in a pool.

    ``entities`` is contracts.AD_ENTITIES, ``scores`` contracts.SCORES (the latest row per entity
    at or before ``as_of`` is used), ``actions`` contracts.ACTIONS (the actions fired this
    cycle), ``last_changes`` contracts.LAST_CHANGES. ``min_budgets`` has ``entity_id`` and
    ``min_budget`` (minor units; entities not listed use ``settings.min_adset_budget``).
    ``in_learning`` has ``entity_id`` and ``in_learning`` and is honoured when
    ``settings.skip_learning`` is set. ``held_pools`` maps a pool to the reason none of its
    entities may move this cycle (e.g. an earlier plan in it is still being finished).
    Malformed inputs raise :class:`ValueError`.
    """
    settings = config.settings
    frame = _budget_holders(entities, config)
    if frame.height == 0:
        return contracts.empty(contracts.PLAN)
    frame = _with_scores(frame, scores, as_of)
    frame = _with_actions(frame, actions)
    frame = _with_blocks(frame, config, as_of, last_changes, in_learning, held_pools)
    frame = _with_min_budget(frame, min_budgets, config.min_adset_budget_minor)
    frame = _with_steps(frame, min(settings.learning_cap_pct, settings.learning_limit_pct))

    pools = frame.select("pool").unique(maintain_order=True).to_series().to_list()
    pool_idx = frame["pool"].replace_strict(pools, list(range(len(pools)))).to_numpy()
    old = frame["old_budget"].to_numpy().astype(np.int64)
    before = _sum_by(pool_idx, old, len(pools))
    floors = np.array([config.floor_minor(p) for p in pools], dtype=np.int64)
    ceilings = np.array([config.ceiling_minor(p) for p in pools], dtype=np.int64)
    alloc = _allocate(
        pool_idx=pool_idx,
        pool_tier=np.array([config.by_name[p].tier for p in pools], dtype=np.int64),
        score=frame["score_value"].fill_null(np.nan).to_numpy().astype(np.float64),
        role=frame["role"].to_numpy(),
        offer=frame["offer"].to_numpy().astype(np.int64),
        want=frame["want"].to_numpy().astype(np.int64),
        absorb_cap=frame["cap_minor"].to_numpy().astype(np.int64),
        absorb_weight=(frame["score_value"].fill_null(0.5).to_numpy() - 0.5).clip(0, None),
        room_down=before - np.minimum(floors, before),
        room_up=np.maximum(ceilings, before) - before,
        margin=settings.cross_tier_margin,
    )
    frame = frame.with_columns(
        pl.Series("given", alloc.given),
        pl.Series("taken", alloc.taken),
        pl.Series("source", alloc.source),
        pl.Series("margin_blocked", alloc.margin_blocked),
        pl.Series("floor_hit", alloc.floor_hit[pool_idx]),
        pl.Series("ceiling_hit", alloc.ceiling_hit[pool_idx]),
        pl.Series("pool_floor", floors[pool_idx]),
        pl.Series("pool_ceiling", ceilings[pool_idx]),
    )
    plan = _finish(frame, config, settings.cross_tier_margin)
    plan = plan.with_columns(pl.lit(plan_id_for(plan, as_of)).alias("plan_id"))
    return contracts.conform(plan, contracts.PLAN)


def plan_id_for(plan: pl.DataFrame, as_of: datetime, scope: str = "") -> str:
    """A stable id: ``plan-YYYYMMDD-HHMM-<8 hex>`` hashing ``scope`` (the warehouse), as_of and
    the sorted moves: identical inputs in one warehouse give the same id."""
    rows = plan.sort("entity_id").select(
        pl.concat_str(
            [
                pl.col("entity_id"),
                pl.col("old_budget").cast(pl.Utf8),
                pl.col("new_budget").cast(pl.Utf8),
                pl.col("pause").cast(pl.Utf8),
            ],
            separator=",",
        )
    )
    text = (f"{scope}\n" if scope else "") + as_of.isoformat() + "\n"
    text += "\n".join(rows.to_series().to_list())
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"plan-{as_of:%Y%m%d-%H%M}-{digest}"


def pool_totals(plan: pl.DataFrame) -> pl.DataFrame:
    """Per pool: ``pool, tier, before, after`` (sums of old and new budgets, minor units)."""
    return (
        plan.group_by("pool", "tier")
        .agg(
            pl.col("old_budget").sum().cast(pl.Int64).alias("before"),
            pl.col("new_budget").sum().cast(pl.Int64).alias("after"),
        )
        .sort("tier", "pool")
    )


def plan_summary_markdown(plan: pl.DataFrame, currency: str) -> str:
    """A markdown summary: pool totals, the moves with their reasons, and held triggers."""
    if plan.height == 0:
        return "Empty plan: no budget holders in any pool."

    def money(v: int) -> str:
        return format_money(int(v), currency)

    def cell(text: str | None) -> str:
        return (text or "").replace("|", "\\|").replace("\n", " ")

    moves = plan.filter((pl.col("new_budget") != pl.col("old_budget")) | pl.col("pause"))
    held = plan.filter((pl.col("action") == "hold") & pl.col("trigger").is_not_null()).sort(
        "pool", "entity_id"
    )
    lines = [
        f"**{plan['plan_id'][0]}**: {moves.height} move(s) over {plan.height} budget holders, "
        f"{int(plan['pause'].sum())} pause(s), {held.height} trigger(s) held.",
        "",
        "| pool | tier | before | after | change |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in pool_totals(plan).iter_rows(named=True):
        change = row["after"] - row["before"]
        lines.append(
            f"| {row['pool']} | {row['tier']} | {money(row['before'])} | {money(row['after'])} "
            f"| {'+' if change > 0 else ''}{money(change)} |"
        )
    if moves.height:
        lines += [
            "",
            "| entity | pool | action | old | new | delta | target | reason |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for row in moves.sort("pool", "entity_id").iter_rows(named=True):
            delta = row["delta"]
            lines.append(
                f"| {row['entity_id']} | {row['pool']} | {row['action']} | "
                f"{money(row['old_budget'])} | {money(row['new_budget'])} | "
                f"{'+' if delta > 0 else ''}{money(delta)} | {money(row['target_budget'])} | "
                f"{cell(row['reason'])} |"
            )
    else:
        lines += ["", "No budget moves this cycle."]
    if held.height:
        lines += ["", "| held entity | pool | reason |", "|---|---|---|"]
        for row in held.iter_rows(named=True):
            lines.append(f"| {row['entity_id']} | {row['pool']} | {cell(row['reason'])} |")
    return "\n".join(lines)


# --- inputs -------------------------------------------------------------------------------


_ENTITY_COLUMNS = (
    "entity_id", "entity_type", "campaign_id", "status", "budget_type", "daily_budget", "pool",
    "locked",
)  # fmt: skip


def _columns(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], names: tuple[str, ...], what: str
) -> pl.DataFrame:
    """The contract columns the planner reads, cast to their contract dtypes."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; has {frame.columns}")
    return frame.select([pl.col(c).cast(schema[c], strict=True) for c in names])


def _budget_holders(entities: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    ents = _columns(entities, contracts.AD_ENTITIES, _ENTITY_COLUMNS, "entities").filter(
        (pl.col("budget_type") == "daily") & pl.col("pool").is_not_null()
    )
    unknown = sorted(set(ents["pool"].unique().to_list()) - set(config.by_name))
    if unknown:
        raise ValueError(f"entities column 'pool' has pools not in the pools config: {unknown}")
    bad = ents.filter(pl.col("daily_budget").is_null() | (pl.col("daily_budget") < 0))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"entities column 'daily_budget' is {row['daily_budget']!r} for daily-budget "
            f"entity {row['entity_id']!r}; expected a non-negative integer"
        )
    dupes = ents.filter(pl.col("entity_id").is_duplicated())["entity_id"].unique().sort()
    if dupes.len():
        raise ValueError(f"entities column 'entity_id' has duplicates: {dupes.to_list()}")

    locked_ids = _locked_ids(config)
    tiers = pl.DataFrame(
        {"pool": list(config.by_name), "tier": [p.tier for p in config.by_name.values()]},
        schema={"pool": pl.Utf8, "tier": pl.Int64},
    )
    return (
        ents.join(tiers, on="pool", how="left")
        .select(
            "entity_id",
            "entity_type",
            "campaign_id",
            "pool",
            "tier",
            "status",
            pl.col("daily_budget").alias("old_budget"),
            (
                pl.col("locked").fill_null(False)
                | pl.col("entity_id").is_in(locked_ids)
                | pl.col("campaign_id").is_in(locked_ids).fill_null(False)
            ).alias("is_locked"),
        )
        .sort("pool", "entity_id")
    )


def _locked_ids(config: PoolsConfig) -> list[str]:
    """Entity or campaign ids the config locks (its lock lists, confirmed by ``is_locked``)."""
    return sorted(i for p in config.pools for i in p.locked if config.is_locked(i))


def _with_scores(frame: pl.DataFrame, scores: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    latest = (
        _columns(scores, contracts.SCORES, ("entity_id", "as_of", "status", "score"), "scores")
        .filter(pl.col("as_of").is_null() | (pl.col("as_of") <= as_of))
        .sort("entity_id", "as_of", nulls_last=False)
        .unique("entity_id", keep="last", maintain_order=True)
        .select(
            "entity_id",
            pl.col("status").alias("score_status"),
            pl.col("score").fill_nan(None).alias("score_value"),
        )
    )
    frame = frame.join(latest, on="entity_id", how="left")
    scored = (pl.col("score_status") == "scored") & pl.col("score_value").is_not_null()
    return frame.with_columns(
        scored.fill_null(False).alias("scored"),
        pl.when(scored).then(pl.col("score_value")).alias("score_value"),
    )


def _with_actions(frame: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    acts = _columns(
        actions, contracts.ACTIONS, ("entity_id", "action", "pct", "trigger", "score"), "actions"
    ).with_row_index("_row")
    unknown = acts.filter(~pl.col("action").is_in(_ALL_ACTIONS) | pl.col("action").is_null())
    if unknown.height:
        row = unknown.row(0, named=True)
        raise ValueError(
            f"actions column 'action' has {row['action']!r} for entity {row['entity_id']!r}; "
            f"expected one of {list(_ALL_ACTIONS)}"
        )
    sized = pl.col("action").is_in(["increase", "decrease"])
    bad_pct = acts.filter(
        sized & (pl.col("pct").is_null() | pl.col("pct").is_nan() | (pl.col("pct") < 0))
    )
    if bad_pct.height:
        row = bad_pct.row(0, named=True)
        raise ValueError(
            f"actions column 'pct' is {row['pct']!r} for {row['action']} of entity "
            f"{row['entity_id']!r}; expected a non-negative percentage"
        )
    priority = (
        pl.when(pl.col("action") == "pause")
        .then(0)
        .when(pl.col("action") == "decrease")
        .then(1)
        .when(pl.col("action") == "increase")
        .then(2)
        .otherwise(3)
    )
    effective = (
        acts.with_columns(priority.alias("_prio"), pl.col("pct").fill_nan(None))
        .filter(pl.col("_prio") < 3)
        .sort(
            ["entity_id", "_prio", "pct", "trigger"],
            descending=[False, False, True, False],
            nulls_last=True,
        )
        .unique("entity_id", keep="first", maintain_order=True)
    )
    pct_text = _pct_text(pl.col("pct"))
    notes = (
        acts.join(effective.select("_row"), on="_row", how="anti")
        .with_columns(
            pl.concat_str(
                [
                    pl.col("action"),
                    pl.when(pl.col("pct").is_not_null()).then(
                        pl.concat_str([pl.lit(" "), pct_text, pl.lit(" %")])
                    ),
                    pl.when(pl.col("trigger").is_not_null()).then(
                        pl.concat_str([pl.lit(" ("), pl.col("trigger"), pl.lit(")")])
                    ),
                ],
                ignore_nulls=True,
            ).alias("_note")
        )
        .group_by("entity_id")
        .agg(
            pl.col("_note").sort().str.join(", ").alias("also_fired"),
            pl.col("action").is_in(["alert", "flag_creative"]).any().alias("flagged"),
            pl.col("trigger").sort().first().alias("note_trigger"),
            pl.col("score").drop_nulls().max().alias("note_score"),
        )
    )
    eff = effective.select(
        "entity_id",
        pl.col("action").alias("act"),
        pl.col("pct").alias("act_pct"),
        pl.col("trigger").alias("act_trigger"),
        pl.col("score").alias("act_score"),
    )
    return (
        frame.join(eff, on="entity_id", how="left")
        .join(notes, on="entity_id", how="left")
        .with_columns(pl.col("flagged").fill_null(False))
    )


def _with_blocks(
    frame: pl.DataFrame,
    config: PoolsConfig,
    as_of: datetime,
    last_changes: pl.DataFrame | None,
    in_learning: pl.DataFrame | None,
    held_pools: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    settings = config.settings
    held = pl.DataFrame(
        {"pool": list(held_pools or {}), "held_reason": list((held_pools or {}).values())},
        schema={"pool": pl.Utf8, "held_reason": pl.Utf8},
    )
    frame = frame.join(held, on="pool", how="left")
    if last_changes is None:
        last_changes = contracts.empty(contracts.LAST_CHANGES)
    changes = (
        contracts.conform(last_changes, contracts.LAST_CHANGES)
        .group_by("entity_id")
        .agg(pl.col("changed_at").max(), pl.col("changes_last_hour").max())
    )
    frame = frame.join(changes, on="entity_id", how="left")
    if in_learning is not None and settings.skip_learning:
        learning = (
            in_learning.select(
                pl.col("entity_id").cast(pl.Utf8), pl.col("in_learning").cast(pl.Boolean)
            )
            .group_by("entity_id")
            .agg(pl.col("in_learning").any())
        )
        frame = frame.join(learning, on="entity_id", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Boolean).alias("in_learning"))

    since = as_of - timedelta(hours=settings.min_change_interval_hours)
    hours_ago = (pl.lit(as_of, dtype=pl.Datetime("us")) - pl.col("changed_at")).dt.total_minutes()
    cooling = (pl.col("changed_at") > since).fill_null(False)
    busy = (pl.col("changes_last_hour") >= settings.max_changes_per_hour).fill_null(False)
    status_ok = (pl.col("status") == "ACTIVE").fill_null(False)
    block = pl.concat_str(
        [
            pl.when(pl.col("is_locked")).then(pl.lit("locked")),
            pl.when(~pl.col("scored")).then(
                pl.concat_str(
                    [
                        pl.lit("unscored ("),
                        pl.col("score_status").fill_null("no score"),
                        pl.lit(")"),
                    ]
                )
            ),
            pl.when(~status_ok).then(
                pl.concat_str([pl.lit("status "), pl.col("status").fill_null("unknown")])
            ),
            pl.when(cooling).then(
                pl.concat_str(
                    [
                        pl.lit("min interval: last change "),
                        (hours_ago / 60).round(1).cast(pl.Utf8),
                        pl.lit(f" h before as_of (< {_num(settings.min_change_interval_hours)} h)"),
                    ]
                )
            ),
            pl.when(busy).then(
                pl.concat_str(
                    [
                        pl.col("changes_last_hour").cast(pl.Utf8),
                        pl.lit(
                            " changes in the last hour "
                            f"(max {settings.max_changes_per_hour} per hour)"
                        ),
                    ]
                )
            ),
            pl.when(pl.col("in_learning").fill_null(False)).then(pl.lit("in learning phase")),
            pl.col("held_reason"),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    return (
        frame.with_columns(block.alias("block"))
        .with_columns(
            pl.when(pl.col("block") == "").then(None).otherwise(pl.col("block")).alias("block")
        )
        .drop("held_reason")
    )


def _with_min_budget(
    frame: pl.DataFrame, min_budgets: pl.DataFrame | None, default: int
) -> pl.DataFrame:
    if min_budgets is None:
        return frame.with_columns(pl.lit(default, dtype=pl.Int64).alias("min_budget"))
    mins = min_budgets.select(
        pl.col("entity_id").cast(pl.Utf8), pl.col("min_budget").cast(pl.Int64, strict=True)
    )
    bad = mins.filter(pl.col("min_budget").is_null() | (pl.col("min_budget") < 0))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"min_budgets column 'min_budget' is {row['min_budget']!r} for entity "
            f"{row['entity_id']!r}; expected a non-negative integer"
        )
    mins = mins.group_by("entity_id").agg(pl.col("min_budget").max())
    return frame.join(mins, on="entity_id", how="left").with_columns(
        pl.col("min_budget").fill_null(default)
    )


def _with_steps(frame: pl.DataFrame, cap_pct: float) -> pl.DataFrame:
    """Role, target, this cycle's offer (donors) / want (recipients) and the binding limits."""
    cap = Fraction(repr(float(cap_pct))).limit_denominator(10_000)
    old = pl.col("old_budget")
    pct = pl.col("act_pct").fill_null(0.0)
    eligible = pl.col("block").is_null()
    role = (
        pl.when(~eligible)
        .then(HOLD)
        .when(pl.col("act") == "pause")
        .then(PAUSE)
        .when(pl.col("act") == "decrease")
        .then(DONOR)
        .when(pl.col("act") == "increase")
        .then(RECIPIENT)
        .when(~pl.col("flagged") & (pl.col("score_value") > 0.5))
        .then(ABSORBER)
        .otherwise(HOLD)
    )
    down_target = (old.cast(pl.Float64) * (100.0 - pct) / 100.0 + 0.5).floor().clip(0, None)
    up_target = (old.cast(pl.Float64) * (100.0 + pct) / 100.0 + 0.5).floor()
    target = (
        pl.when(pl.col("act") == "decrease")
        .then(down_target)
        .when(pl.col("act") == "increase")
        .then(up_target)
        .otherwise(old.cast(pl.Float64))
        .cast(pl.Int64)
    )
    frame = frame.with_columns(
        role.cast(pl.Int64).alias("role"),
        target.alias("trigger_target"),
        (old * cap.numerator // (100 * cap.denominator)).alias("cap_minor"),
        (old - pl.col("min_budget")).clip(0, None).alias("room_min"),
    )
    wanted_down = pl.col("old_budget") - pl.col("trigger_target")
    wanted_up = pl.col("trigger_target") - pl.col("old_budget")
    return frame.with_columns(
        pl.when(pl.col("role") == DONOR)
        .then(pl.min_horizontal(wanted_down, pl.col("cap_minor"), pl.col("room_min")))
        .otherwise(0)
        .clip(0, None)
        .alias("offer"),
        pl.when(pl.col("role") == RECIPIENT)
        .then(pl.min_horizontal(wanted_up, pl.col("cap_minor")))
        .otherwise(0)
        .clip(0, None)
        .alias("want"),
        (
            (pl.col("act") == "decrease")
            & (pl.col("cap_minor") < wanted_down)
            & (pl.col("cap_minor") <= pl.col("room_min"))
        ).alias("dec_cap_bound"),
        (
            (pl.col("act") == "decrease")
            & (pl.col("room_min") < wanted_down)
            & (pl.col("room_min") < pl.col("cap_minor"))
        ).alias("dec_min_bound"),
        ((pl.col("act") == "increase") & (pl.col("cap_minor") < wanted_up)).alias("inc_cap_bound"),
    )


# --- allocation ---------------------------------------------------------------------------


@dataclass
class _Allocation:
    given: np.ndarray  # what each donor gives (minor units)
    taken: np.ndarray  # what each recipient / absorber receives
    source: np.ndarray  # bit mask of stages that moved the entity's money
    margin_blocked: np.ndarray  # recipient short of its want while other-tier money failed margin
    floor_hit: np.ndarray  # per pool: offers left that the floor kept from leaving
    ceiling_hit: np.ndarray  # per pool: wants left that the ceiling kept from arriving


def _sum_by(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Integer sums of ``values`` per group (exact, unlike a float-weighted bincount)."""
    sums = np.zeros(n_groups, dtype=np.int64)
    np.add.at(sums, groups, values.astype(np.int64))
    return sums


def _split_within(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` (≤ caps.sum()) that never gives a part above its cap.

    With ``weights == caps`` the largest-remainder rule already keeps every part within its cap;
    float rounding in the shares could in principle push one part a unit over, so any such unit
    is moved to the first parts that still have room.
    """
    if total <= 0:
        return np.zeros(len(caps), dtype=np.int64)
    parts = largest_remainder_split(total, weights)
    over = np.maximum(parts - caps, 0)
    if over.any():
        parts = parts - over
        spare = int(over.sum())
        room = np.cumsum(caps - parts)
        extra = np.diff(np.concatenate([[0], np.minimum(room, spare)]))
        parts = parts + extra
    return parts


def _capped_proportional(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Place up to ``total`` in proportion to ``weights``, each part within its cap (water-fill)."""
    parts = np.zeros(len(caps), dtype=np.int64)
    active = (caps > 0) & (weights > 0)
    left = min(int(total), int(caps[active].sum()))
    while left > 0 and active.any():
        idx = np.flatnonzero(active)
        share = largest_remainder_split(left, weights[idx])
        room = caps[idx] - parts[idx]
        full = share >= room
        if not full.any():
            parts[idx] += share
            break
        parts[idx[full]] = caps[idx[full]]
        active[idx[full]] = False
        left = min(int(total) - int(parts.sum()), int((caps - parts)[active].sum()))
    return parts


def _nested_flow(
    d_score: np.ndarray,
    d_left: np.ndarray,
    r_score: np.ndarray,
    r_left: np.ndarray,
    margin: float,
    limit: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-tier flow where donor i may fund recipient j only if ``s_j − s_i ≥ margin``.

    Eligible donors of a recipient are a prefix of the donors sorted by score, so serving
    recipients from the lowest score up, each as much as its prefix still holds, is a maximum
    flow: cumulative takes ``T_j = min(T_{j−1} + w_j, P_j)``, solved in closed form. Capped at
    ``limit`` (the pools' room), the lowest-scoring recipients give way first; donors give from
    the lowest score up, which keeps every take inside its eligible prefix.
    """
    do = np.argsort(d_score, kind="stable")
    ro = np.argsort(r_score, kind="stable")
    prefix = np.concatenate([[0], np.cumsum(d_left[do])])
    reach = np.searchsorted(d_score[do], r_score[ro] - margin + SCORE_EPS, side="right")
    wants = np.cumsum(r_left[ro])
    cum_take = wants + np.minimum.accumulate(np.minimum(0, prefix[reach] - wants))
    total = int(cum_take[-1])
    placed = min(total, int(limit))
    cum_take = cum_take - np.minimum(cum_take, total - placed)
    takes = np.zeros(len(r_left), dtype=np.int64)
    takes[ro] = np.diff(np.concatenate([[0], cum_take]))
    gives = np.zeros(len(d_left), dtype=np.int64)
    gives[do] = np.diff(np.concatenate([[0], np.minimum(prefix[1:], placed)]))
    return gives, takes


def _allocate(
    *,
    pool_idx: np.ndarray,
    pool_tier: np.ndarray,
    score: np.ndarray,
    role: np.ndarray,
    offer: np.ndarray,
    want: np.ndarray,
    absorb_cap: np.ndarray,
    absorb_weight: np.ndarray,
    room_down: np.ndarray,
    room_up: np.ndarray,
    margin: float,
) -> _Allocation:
    n, n_pools = len(pool_idx), len(pool_tier)
    given = np.zeros(n, dtype=np.int64)
    taken = np.zeros(n, dtype=np.int64)
    source = np.zeros(n, dtype=np.int64)
    room_down, room_up = room_down.copy(), room_up.copy()
    offer = np.where(role == DONOR, offer, 0)
    want = np.where(role == RECIPIENT, want, 0)

    def offers_left() -> np.ndarray:
        return offer - given

    def wants_left() -> np.ndarray:
        return want - taken

    def pool_sums(values: np.ndarray) -> np.ndarray:
        return _sum_by(pool_idx, values, n_pools)

    def move(rows: np.ndarray, amount: int, left: np.ndarray, into: np.ndarray, tag: int) -> None:
        parts = _split_within(amount, left[rows], left[rows])
        into[rows] += parts
        source[rows[parts > 0]] |= tag

    # 1. within each pool: pool totals do not change.
    for p in range(n_pools):
        in_pool = pool_idx == p
        donors = np.flatnonzero(in_pool & (offers_left() > 0))
        takers = np.flatnonzero(in_pool & (wants_left() > 0))
        if donors.size and takers.size:
            flow = min(int(offers_left()[donors].sum()), int(wants_left()[takers].sum()))
            move(donors, flow, offers_left(), given, SAME_POOL)
            move(takers, flow, wants_left(), taken, SAME_POOL)

    # 2. across pools of one tier, within each pool's room above its floor / below its ceiling.
    for tier in np.unique(pool_tier):
        pools = np.flatnonzero(pool_tier == tier)
        supply = np.minimum(pool_sums(offers_left())[pools], room_down[pools])
        demand = np.minimum(pool_sums(wants_left())[pools], room_up[pools])
        flow = int(min(supply.sum(), demand.sum()))
        if flow <= 0:
            continue
        out = _split_within(flow, supply, supply)
        inn = _split_within(flow, demand, demand)
        for k, p in enumerate(pools):
            if out[k]:
                move(
                    np.flatnonzero((pool_idx == p) & (offers_left() > 0)),
                    int(out[k]),
                    offers_left(),
                    given,
                    SAME_TIER,
                )
                room_down[p] -= out[k]
            if inn[k]:
                move(
                    np.flatnonzero((pool_idx == p) & (wants_left() > 0)),
                    int(inn[k]),
                    wants_left(),
                    taken,
                    SAME_TIER,
                )
                room_up[p] -= inn[k]

    # 3. across tiers, only donor → recipient pairs clearing the score margin; pool pairs in
    #    order of tier distance, then recipient pool, then donor pool.
    pairs = sorted(
        (
            (abs(int(pool_tier[p]) - int(pool_tier[q])), q, p)
            for p in range(n_pools)
            for q in range(n_pools)
            if pool_tier[p] != pool_tier[q]
        ),
    )
    for _, q, p in pairs:
        limit = int(min(room_down[p], room_up[q]))
        donors = np.flatnonzero((pool_idx == p) & (offers_left() > 0))
        takers = np.flatnonzero((pool_idx == q) & (wants_left() > 0))
        if limit <= 0 or not donors.size or not takers.size:
            continue
        gives, takes = _nested_flow(
            score[donors],
            offers_left()[donors],
            score[takers],
            wants_left()[takers],
            margin,
            limit,
        )
        given[donors] += gives
        taken[takers] += takes
        source[donors[gives > 0]] |= CROSS_TIER
        source[takers[takes > 0]] |= CROSS_TIER
        room_down[p] -= int(gives.sum())
        room_up[q] -= int(takes.sum())

    # 4. what is still offered goes to same-pool entities scoring above 0.5, within their caps.
    for p in range(n_pools):
        in_pool = pool_idx == p
        donors = np.flatnonzero(in_pool & (offers_left() > 0))
        sinks = np.flatnonzero(in_pool & (role == ABSORBER) & (absorb_cap > 0))
        if not donors.size or not sinks.size:
            continue
        parts = _capped_proportional(
            int(offers_left()[donors].sum()), absorb_weight[sinks], absorb_cap[sinks]
        )
        placed = int(parts.sum())
        if placed:
            taken[sinks] += parts
            source[sinks[parts > 0]] |= ABSORBED
            move(donors, placed, offers_left(), given, ABSORBED)

    # Which bounds kept money in place, for the reasons.
    left_offer, left_want = pool_sums(offers_left()), pool_sums(wants_left())
    floor_hit = (left_offer > 0) & (room_down == 0) & (left_want.sum() - left_want > 0)
    ceiling_hit = (left_want > 0) & (room_up == 0) & (left_offer.sum() - left_offer > 0)
    margin_blocked = np.zeros(n, dtype=bool)
    for q in range(n_pools):
        others = np.flatnonzero(
            (pool_tier[pool_idx] != pool_tier[q]) & (offers_left() > 0) & (room_down[pool_idx] > 0)
        )
        if not others.size or room_up[q] <= 0:
            continue
        lowest = score[others].min()
        short = (pool_idx == q) & (wants_left() > 0)
        margin_blocked |= short & (score - lowest < margin - SCORE_EPS)
    return _Allocation(given, taken, source, margin_blocked, floor_hit, ceiling_hit)


# --- output -------------------------------------------------------------------------------


def _finish(frame: pl.DataFrame, config: PoolsConfig, margin: float) -> pl.DataFrame:
    currency = config.currency
    cap_pct = _num(min(config.settings.learning_cap_pct, config.settings.learning_limit_pct))
    role, old = pl.col("role"), pl.col("old_budget")
    given, taken = pl.col("given"), pl.col("taken")
    new = old - given + taken
    moved = (given > 0) | (taken > 0)
    action = (
        pl.when(role == PAUSE)
        .then(pl.lit("pause"))
        .when((role == DONOR) & moved)
        .then(pl.lit("decrease"))
        .when(role.is_in([RECIPIENT, ABSORBER]) & moved)
        .then(pl.lit("increase"))
        .otherwise(pl.lit("hold"))
    )
    frame = frame.with_columns(new.alias("new_budget"), action.alias("action"))
    target = (
        pl.when(role.is_in([DONOR, RECIPIENT]) & moved)
        .then(pl.col("trigger_target"))
        .otherwise(pl.col("new_budget"))
    )

    def m(expr: pl.Expr) -> pl.Expr:
        return _money_text(expr, currency)

    score_text = pl.when(pl.col("score_value").is_not_null()).then(
        pl.concat_str([pl.lit("score "), _fixed2(pl.col("score_value"))])
    )
    head = (
        pl.when(pl.col("act").is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.col("act_trigger").fill_null("unnamed trigger"),
                    pl.lit(": "),
                    pl.col("act"),
                    pl.when(pl.col("act_pct").is_not_null()).then(
                        pl.concat_str([pl.lit(" "), _pct_text(pl.col("act_pct")), pl.lit(" %")])
                    ),
                    pl.when(pl.col("act") != "pause").then(
                        pl.concat_str(
                            [pl.lit(" (target "), m(pl.col("trigger_target")), pl.lit(")")]
                        )
                    ),
                ],
                ignore_nulls=True,
            )
        )
        .otherwise(pl.lit("no trigger"))
    )
    glide = pl.lit(f"glide path: step capped at {cap_pct} %")
    floor_text = pl.concat_str([pl.lit("pool floor "), m(pl.col("pool_floor")), pl.lit(" binds")])
    ceiling_text = pl.concat_str(
        [pl.lit("pool ceiling "), m(pl.col("pool_ceiling")), pl.lit(" binds")]
    )
    margin_text = pl.lit(f"cross-tier margin {_num(margin)} not met by other-tier donors")
    min_text = pl.concat_str([pl.lit("min budget "), m(pl.col("min_budget")), pl.lit(" binds")])
    route = pl.concat_str(
        [
            pl.when((pl.col("source") & SAME_POOL) > 0).then(pl.lit("same pool")),
            pl.when((pl.col("source") & SAME_TIER) > 0).then(pl.lit("same tier")),
            pl.when((pl.col("source") & CROSS_TIER) > 0).then(
                pl.lit(f"other tiers (score margin ≥ {_num(margin)})")
            ),
            pl.when((pl.col("source") & ABSORBED) > 0).then(
                pl.lit("same-pool entities scoring above 0.5")
            ),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    short_offer = (pl.col("offer") > given) & (role == DONOR)
    short_want = (pl.col("want") > taken) & (role == RECIPIENT)
    donor_text = pl.concat_str(
        [
            pl.when(moved)
            .then(
                pl.concat_str(
                    [
                        pl.lit("decrease "),
                        m(given),
                        pl.lit(" to "),
                        m(new),
                        pl.lit(" (to "),
                        route,
                        pl.lit(")"),
                    ]
                )
            )
            .otherwise(pl.lit("hold")),
            pl.when(pl.col("dec_cap_bound")).then(glide),
            pl.when(pl.col("dec_min_bound")).then(min_text),
            pl.when(short_offer & pl.col("floor_hit")).then(floor_text),
            pl.when(short_offer & ~pl.col("floor_hit") & moved).then(
                pl.lit("donation shrunk to what recipients could take")
            ),
            pl.when(short_offer & ~pl.col("floor_hit") & ~moved).then(
                pl.lit("no recipient for the freed budget")
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    recipient_text = pl.concat_str(
        [
            pl.when(moved)
            .then(
                pl.concat_str(
                    [
                        pl.lit("increase "),
                        m(taken),
                        pl.lit(" to "),
                        m(new),
                        pl.lit(" (from "),
                        route,
                        pl.lit(")"),
                    ]
                )
            )
            .otherwise(pl.lit("hold: no donor")),
            pl.when(pl.col("inc_cap_bound")).then(glide),
            pl.when(pl.col("cap_minor") == 0).then(pl.lit(f"learning cap {cap_pct} % allows 0")),
            pl.when(short_want & pl.col("ceiling_hit")).then(ceiling_text),
            pl.when(short_want & pl.col("margin_blocked")).then(margin_text),
            pl.when(short_want & pl.col("floor_hit").any()).then(
                pl.lit("donor pools at their floor keep the rest")
            ),
            pl.when(short_want & moved & ~pl.col("ceiling_hit") & ~pl.col("margin_blocked")).then(
                pl.lit("scaled down: not enough freed budget")
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    absorber_text = (
        pl.when(moved)
        .then(
            pl.concat_str(
                [
                    pl.lit("absorbs freed budget: increase "),
                    m(taken),
                    pl.lit(" to "),
                    m(new),
                    pl.when(taken >= pl.col("cap_minor")).then(
                        pl.lit(f"; step capped at {cap_pct} %")
                    ),
                ],
                ignore_nulls=True,
            )
        )
        .otherwise(pl.lit("hold: no move needed"))
    )
    body = (
        pl.when(role == HOLD)
        .then(
            pl.when(pl.col("block").is_not_null())
            .then(pl.concat_str([pl.lit("hold: "), pl.col("block")]))
            .otherwise(pl.lit("hold: no move needed"))
        )
        .when(role == PAUSE)
        .then(pl.concat_str([pl.lit("pause; stored budget kept at "), m(old)]))
        .when(role == DONOR)
        .then(donor_text)
        .when(role == RECIPIENT)
        .then(recipient_text)
        .otherwise(absorber_text)
    )
    also = pl.when(pl.col("also_fired").is_not_null()).then(
        pl.concat_str([pl.lit("also fired: "), pl.col("also_fired")])
    )
    reason = pl.concat_str(
        [
            pl.concat_str([head, pl.lit(" ("), score_text.fill_null("unscored"), pl.lit(")")]),
            body,
            also,
        ],
        separator=" — ",
        ignore_nulls=True,
    )
    return frame.with_columns(
        (pl.col("new_budget") - old).alias("delta"),
        target.alias("target_budget"),
        (role == PAUSE).alias("pause"),
        pl.coalesce("act_trigger", "note_trigger").alias("trigger"),
        pl.coalesce("score_value", "act_score", "note_score").fill_nan(None).alias("score"),
        reason.alias("reason"),
        pl.lit("", dtype=pl.Utf8).alias("plan_id"),
    )


def _money_text(expr: pl.Expr, currency: str) -> pl.Expr:
    """Minor units → ``"123.45 EUR"`` as a polars expression (format_money without separators)."""
    factor = minor_factor(currency)
    if factor == 1:
        return pl.concat_str([expr.cast(pl.Utf8), pl.lit(f" {currency}")])
    width = len(str(factor)) - 1
    sign = pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(
        [
            sign,
            (expr.abs() // factor).cast(pl.Utf8),
            pl.lit("."),
            (expr.abs() % factor).cast(pl.Utf8).str.zfill(width),
            pl.lit(f" {currency}"),
        ]
    )


def _fixed2(expr: pl.Expr) -> pl.Expr:
    """A non-negative float as text with two decimals (``0.5`` → ``"0.50"``)."""
    hundredths = (expr * 100).round(0).cast(pl.Int64)
    return pl.concat_str(
        [
            (hundredths // 100).cast(pl.Utf8),
            pl.lit("."),
            (hundredths % 100).cast(pl.Utf8).str.zfill(2),
        ]
    )


def _pct_text(expr: pl.Expr) -> pl.Expr:
    """``25.0`` → ``"25"``, ``12.5`` → ``"12.5"``."""
    return (
        pl.when(expr == expr.round(0))
        .then(expr.round(0).cast(pl.Int64).cast(pl.Utf8))
        .otherwise(expr.round(2).cast(pl.Utf8))
    )


def _num(value: float) -> str:
    return f"{value:g}"
