"""Budget holders and the guards that hold them still, shared by every policy and the allocator.

A budget holder is an ad set with its own daily budget, or a CBO campaign (its ad sets have
none), in a configured pool. Lifetime budgets are a different bucket (a total with
``budget_remaining``) and are never moved. :func:`with_blocks` names, per holder, every guard
that forbids moving it this cycle (SPEC §7): locked, not ACTIVE, changed less than
``min_change_interval_hours`` before ``as_of`` or already at or after ``as_of`` (one move per
evaluation point), ``max_changes_per_hour`` edits in the last hour, still learning (with
``skip_learning``), or its pool held (an earlier plan still being finished).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig


def num(value: float) -> str:
    return f"{value:g}"


_ENTITY_COLUMNS = (
    "entity_id", "entity_type", "campaign_id", "status", "budget_type", "daily_budget", "pool",
    "locked",
)  # fmt: skip


def columns(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], names: tuple[str, ...], what: str
) -> pl.DataFrame:
    """The contract columns the planner reads, cast to their contract dtypes."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; has {frame.columns}")
    return frame.select([pl.col(c).cast(schema[c], strict=True) for c in names])


def budget_holders(entities: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    ents = columns(entities, contracts.AD_ENTITIES, _ENTITY_COLUMNS, "entities").filter(
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

    locked = locked_ids(config)
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
                | pl.col("entity_id").is_in(locked)
                | pl.col("campaign_id").is_in(locked).fill_null(False)
            ).alias("is_locked"),
        )
        .sort("pool", "entity_id")
    )


def locked_ids(config: PoolsConfig) -> list[str]:
    """Entity or campaign ids the config locks (its lock lists, confirmed by ``is_locked``)."""
    return sorted(i for p in config.pools for i in p.locked if config.is_locked(i))


def with_scores(
    frame: pl.DataFrame,
    scores: pl.DataFrame | None,
    as_of: datetime,
    exempt_pools: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Each holder's latest score at or before ``as_of``; ``scored`` is False for
    ``insufficient_data`` (never moved, SPEC §3) except in ``exempt_pools`` (a Meta rule reads
    raw metrics, not the score), or for every holder when ``scores`` is None."""
    if scores is None:
        return frame.with_columns(
            scored=pl.lit(True),
            score_status=pl.lit(None, dtype=pl.Utf8),
            score_value=pl.lit(None, dtype=pl.Float64),
        )
    latest = (
        columns(scores, contracts.SCORES, ("entity_id", "as_of", "status", "score"), "scores")
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
    exempt = pl.col("pool").is_in(list(exempt_pools))
    return frame.with_columns(
        (scored.fill_null(False) | exempt).alias("scored"),
        pl.when(scored).then(pl.col("score_value")).alias("score_value"),
    )


def with_blocks(
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
    # One move per evaluation point: a change at or after as_of (an intraday re-plan of the
    # same point) holds the holder until the next point.
    moved_here = (pl.col("changed_at") >= pl.lit(as_of, dtype=pl.Datetime("us"))).fill_null(False)
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
            pl.when(moved_here).then(
                pl.lit("already moved at this evaluation point; moves again at the next one")
            ),
            pl.when(cooling & ~moved_here).then(
                pl.concat_str(
                    [
                        pl.lit("min interval: last change "),
                        (hours_ago / 60).round(1).cast(pl.Utf8),
                        pl.lit(f" h before as_of (< {num(settings.min_change_interval_hours)} h)"),
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


def with_min_budget(
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
