"""Guards: the rules no rebalance plan may break (SPEC §7), checked independently of the planner.

The blocking asset checks run these on the planned frame, and the executor runs them again right
before it calls the API. Each ``check_*`` takes a contracts.PLAN frame (only the columns it
needs) and returns a frame of violations, one row per offending entity or pool with the numbers
and a ``detail`` sentence; an empty frame is a pass. A malformed plan (missing column, null or
negative budget, non-integer budget dtype, duplicate entity id, NaN score, pause null, delta
that is not ``new − old``) raises :class:`ValueError` naming the column and the value.

An entity is *edited* by a row when its budget changes or it is paused. Budgets are integer
minor units and every comparison here is exact integer arithmetic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.plan_validation import guard, validate_plan


def check_floors(plan: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Pools that end below their floor *and* below where they started."""
    validate_plan(plan, ("pool", "pause"))
    return _floors(_pool_bounds(plan, config))


def _floors(totals: pl.DataFrame) -> pl.DataFrame:
    return totals.filter(
        (pl.col("after") < pl.col("floor")) & (pl.col("after") < pl.col("before"))
    ).select(
        "pool",
        "floor",
        "before",
        "after",
        (pl.col("floor") - pl.col("after")).alias("shortfall"),
        pl.format(
            "pool {} ends at {} (minor units), below its floor {} and below its {} before",
            "pool",
            "after",
            "floor",
            "before",
        ).alias("detail"),
    )


def check_ceilings(plan: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Pools that end above their ceiling *and* above where they started."""
    validate_plan(plan, ("pool", "pause"))
    return _ceilings(_pool_bounds(plan, config))


def _ceilings(totals: pl.DataFrame) -> pl.DataFrame:
    return totals.filter(
        (pl.col("after") > pl.col("ceiling")) & (pl.col("after") > pl.col("before"))
    ).select(
        "pool",
        "ceiling",
        "before",
        "after",
        (pl.col("after") - pl.col("ceiling")).alias("excess"),
        pl.format(
            "pool {} ends at {} (minor units), above its ceiling {} and above its {} before",
            "pool",
            "after",
            "ceiling",
            "before",
        ).alias("detail"),
    )


@guard()
def check_learning_limit(plan: pl.DataFrame, cap_pct: float) -> pl.DataFrame:
    """Entities whose change ``|new − old|`` exceeds ``old × cap_pct / 100`` (exact)."""
    cap = Fraction(repr(float(cap_pct))).limit_denominator(10_000)
    old, new = pl.col("old_budget").cast(pl.Int64), pl.col("new_budget").cast(pl.Int64)
    change = (new - old).abs()
    return plan.filter(change * (100 * cap.denominator) > old * cap.numerator).select(
        "entity_id",
        old.alias("old_budget"),
        new.alias("new_budget"),
        (new - old).alias("delta"),
        (old * cap.numerator // (100 * cap.denominator)).alias("allowed"),
        pl.format(
            "{} changes by {} (minor units), more than {} % of {}",
            "entity_id",
            new - old,
            pl.lit(f"{cap_pct:g}"),
            old,
        ).alias("detail"),
    )


def _active_after() -> pl.Expr:
    """The budgets still spending after the plan: a paused holder's stored budget is kept but
    spends nothing, so its money counts where the plan moved it (issue 9: pauses free money)."""
    return (
        pl.when(pl.col("pause").fill_null(False))
        .then(0)
        .otherwise(pl.col("new_budget").cast(pl.Int64))
        .sum()
    )


@guard("pause", by_entity=False)
def check_conservation(plan: pl.DataFrame) -> pl.DataFrame:
    """One row (before, after, difference) when the plan creates or destroys money: the
    budgets spending after it (a paused holder's money moved to active ones) against before."""
    totals = plan.select(
        pl.col("old_budget").cast(pl.Int64).sum().alias("before"),
        _active_after().alias("after"),
    ).with_columns((pl.col("after") - pl.col("before")).alias("difference"))
    return totals.filter(pl.col("difference") != 0).with_columns(
        pl.format(
            "plan total goes from {} to {} (minor units): {} created",
            "before",
            "after",
            "difference",
        ).alias("detail")
    )


@guard("pause")
def check_min_interval(
    plan: pl.DataFrame,
    last_changes: pl.DataFrame,
    as_of: datetime,
    hours: float,
    max_per_hour: int,
) -> pl.DataFrame:
    """Edited entities changed less than ``hours`` before ``as_of`` (or later), or already edited
    ``max_per_hour`` times in the last hour (contracts.LAST_CHANGES)."""
    changes = (
        contracts.conform(last_changes, contracts.LAST_CHANGES)
        .lazy()
        .group_by("entity_id")
        .agg(pl.col("changed_at").max(), pl.col("changes_last_hour").max())
    )
    since = as_of - timedelta(hours=hours)
    too_soon = (pl.col("changed_at") > since).fill_null(False)
    too_many = (pl.col("changes_last_hour") >= max_per_hour).fill_null(False)
    return (
        plan.lazy()
        .filter(_edited())
        .join(changes, on="entity_id", how="inner")
        .filter(too_soon | too_many)
        .select(
            "entity_id",
            "old_budget",
            "new_budget",
            "pause",
            "changed_at",
            "changes_last_hour",
            pl.concat_str(
                [
                    pl.col("entity_id"),
                    pl.lit(" is edited"),
                    pl.when(too_soon).then(
                        pl.concat_str(
                            [
                                pl.lit(" though last changed at "),
                                pl.col("changed_at").dt.to_string("%Y-%m-%d %H:%M"),
                                pl.lit(f", less than {hours:g} h before {as_of:%Y-%m-%d %H:%M}"),
                            ]
                        )
                    ),
                    pl.when(too_many).then(
                        pl.concat_str(
                            [
                                pl.lit(" after "),
                                pl.col("changes_last_hour").cast(pl.Utf8),
                                pl.lit(f" changes in the last hour (max {max_per_hour})"),
                            ]
                        )
                    ),
                ],
                ignore_nulls=True,
            ).alias("detail"),
        )
        .collect()
    )


@guard()
def check_min_budget(
    plan: pl.DataFrame, min_budgets: pl.DataFrame | int, *, default: int = 0
) -> pl.DataFrame:
    """Entities cut below their minimum budget (``entity_id, min_budget`` rows, or one integer
    for every entity; entities missing from the frame use ``default``). A budget that was
    already below the minimum and is not cut further is not a violation."""
    cut = plan.filter(pl.col("new_budget") < pl.col("old_budget"))
    if isinstance(min_budgets, pl.DataFrame):
        mins = (
            min_budgets.select(
                pl.col("entity_id").cast(pl.Utf8), pl.col("min_budget").cast(pl.Int64, strict=True)
            )
            .join(cut.select("entity_id"), on="entity_id", how="semi")  # only the cut ones
            .group_by("entity_id")
            .agg(pl.col("min_budget").max())
        )
        frame = cut.join(mins, on="entity_id", how="left").with_columns(
            pl.col("min_budget").fill_null(default)
        )
    else:
        frame = cut.with_columns(pl.lit(int(min_budgets), dtype=pl.Int64).alias("min_budget"))
    return frame.filter(pl.col("new_budget") < pl.col("min_budget")).select(
        "entity_id",
        "old_budget",
        "new_budget",
        "min_budget",
        pl.format(
            "{} is cut from {} to {} (minor units), below its minimum budget {}",
            "entity_id",
            "old_budget",
            "new_budget",
            "min_budget",
        ).alias("detail"),
    )


@guard("pause", "campaign_id")
def check_locked(
    plan: pl.DataFrame, config: PoolsConfig, *, entities: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Edited entities that are locked in the config (by entity or campaign id), or flagged
    ``locked`` in ``entities`` (contracts.AD_ENTITIES) when given."""
    # The config's lock lists name entity or campaign ids; ``is_locked`` has the last word.
    locked = {i for p in config.pools for i in p.locked if config.is_locked(i)}
    if entities is not None:
        flagged = entities.filter(pl.col("locked").fill_null(False))["entity_id"].to_list()
        locked |= set(flagged)
    locked_ids = sorted(locked)
    return (
        plan.filter(_edited())
        .filter(
            pl.col("entity_id").is_in(locked_ids)
            | pl.col("campaign_id").is_in(locked_ids).fill_null(False)
        )
        .select(
            "entity_id",
            "campaign_id",
            "old_budget",
            "new_budget",
            "pause",
            pl.format(
                "{} (campaign {}) is locked but the plan moves it from {} to {}, pause={}",
                "entity_id",
                pl.col("campaign_id").fill_null("?"),
                "old_budget",
                "new_budget",
                "pause",
            ).alias("detail"),
        )
    )


@guard("pause")
def check_pause_keeps_budget(plan: pl.DataFrame) -> pl.DataFrame:
    """Paused rows whose stored budget changes, and rows whose ``action`` disagrees with
    ``pause``."""
    budget_moved = pl.col("pause") & (pl.col("new_budget") != pl.col("old_budget"))
    if "action" in plan.columns:
        mismatch = (pl.col("action") == "pause").fill_null(False) != pl.col("pause")
    else:
        mismatch = pl.lit(False)
    return plan.filter(budget_moved | mismatch).select(
        "entity_id",
        "old_budget",
        "new_budget",
        "pause",
        (pl.col("action") if "action" in plan.columns else pl.lit(None, pl.Utf8)).alias("action"),
        pl.when(budget_moved)
        .then(
            pl.format(
                "{} is paused but its budget changes from {} to {}",
                "entity_id",
                "old_budget",
                "new_budget",
            )
        )
        .otherwise(
            pl.format(
                "{} has pause={} but action {}",
                "entity_id",
                "pause",
                pl.col("action") if "action" in plan.columns else pl.lit("?"),
            )
        )
        .alias("detail"),
    )


@guard("pause")
def check_in_learning(plan: pl.DataFrame, in_learning: pl.DataFrame) -> pl.DataFrame:
    """Edited entities still in Meta's learning phase (``entity_id, in_learning`` rows)."""
    learning = (
        in_learning.lazy()
        .select(pl.col("entity_id").cast(pl.Utf8), pl.col("in_learning").cast(pl.Boolean))
        .filter(pl.col("in_learning").fill_null(False))
        .select("entity_id")
        .unique()
    )
    return (
        plan.lazy()
        .filter(_edited())
        .join(learning, on="entity_id", how="inner")
        .select(
            "entity_id",
            "old_budget",
            "new_budget",
            "pause",
            pl.format("{} is still learning but the plan edits it", "entity_id").alias("detail"),
        )
        .collect()
    )


def plan_violations(
    plan: pl.DataFrame,
    config: PoolsConfig,
    *,
    last_changes: pl.DataFrame | None = None,
    as_of: datetime | None = None,
    min_budgets: pl.DataFrame | None = None,
    in_learning: pl.DataFrame | None = None,
    entities: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Run every guard; ``{name: violations}``, all empty when the plan is safe to execute.

    The learning check uses ``settings.learning_cap_pct`` (the per-adjustment cap, never above
    the limit). ``min_interval`` needs ``last_changes`` and ``as_of`` (empty without them);
    ``min_budget`` uses ``min_budgets`` over ``settings.min_adset_budget``; ``in_learning`` is
    checked when given and ``settings.skip_learning`` is set.
    """
    settings = config.settings
    validate_plan(plan, ("pool", "pause", "campaign_id"))
    if last_changes is not None and as_of is None:
        raise ValueError("plan_violations: 'as_of' is required with 'last_changes'")
    default_min = config.min_adset_budget_minor
    totals = _pool_bounds(plan, config)
    # validated above, with every column any check requires: each check runs on_valid
    return {
        "floors": _floors(totals),
        "ceilings": _ceilings(totals),
        "learning_limit": check_learning_limit.on_valid(
            plan, min(settings.learning_cap_pct, settings.learning_limit_pct)
        ),
        "conservation": check_conservation.on_valid(plan),
        "min_interval": check_min_interval.on_valid(
            plan,
            contracts.empty(contracts.LAST_CHANGES) if last_changes is None else last_changes,
            as_of or datetime(1970, 1, 1),
            settings.min_change_interval_hours,
            settings.max_changes_per_hour,
        ),
        "min_budget": check_min_budget.on_valid(
            plan, default_min if min_budgets is None else min_budgets, default=default_min
        ),
        "locked": check_locked.on_valid(plan, config, entities=entities),
        "pause_keeps_budget": check_pause_keeps_budget.on_valid(plan),
        "in_learning": check_in_learning.on_valid(
            plan,
            in_learning
            if in_learning is not None and settings.skip_learning
            else pl.DataFrame(schema={"entity_id": pl.Utf8, "in_learning": pl.Boolean}),
        ),
    }


def _edited() -> pl.Expr:
    return (pl.col("new_budget") != pl.col("old_budget")) | pl.col("pause")


def _pool_bounds(plan: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Per pool of a validated plan: before, after (budgets spending), floor, ceiling."""
    unknown = sorted(set(plan["pool"].unique().to_list()) - set(config.by_name))
    if unknown:
        raise ValueError(f"plan column 'pool' has pools not in the pools config: {unknown}")
    bounds = pl.DataFrame(
        {
            "pool": list(config.by_name),
            "floor": [config.floor_minor(p) for p in config.by_name],
            "ceiling": [config.ceiling_minor(p) for p in config.by_name],
        },
        schema={"pool": pl.Utf8, "floor": pl.Int64, "ceiling": pl.Int64},
    )
    return (
        plan.group_by("pool")
        .agg(
            pl.col("old_budget").cast(pl.Int64).sum().alias("before"),
            _active_after().alias("after"),
        )
        .join(bounds, on="pool", how="left")
        .sort("pool")
    )
