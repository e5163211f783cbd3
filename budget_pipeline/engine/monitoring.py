"""Weekly monitoring (SPEC §9): is the engine healthy, pool by pool?

Pure functions over the warehouse (DuckDB) and the pools config, one per report, each as of
the warehouse's data clock (the newest Insights hour), over the week before it:

- :func:`budget_utilisation` — spend against the pool's daily budget × 7 (Meta may spend up to
  75 % over a daily budget on one day, so utilisation is judged over the week), and how often
  the week's plans left the pool at its floor or its ceiling;
- :func:`trigger_fire_rate` — budget actions fired per pool in the week (3–7 is healthy) and
  executed changes per pool per day (more than one on average: triggers too sensitive);
- :func:`learning_resets` — budget changes in the action log above the learning limit (20 %),
  each of which sends an ad set back into Meta's learning phase;
- :func:`score_drift` — each pool's mean composite score now against 30 days ago, both
  computed with today's config; a pool that moved by :data:`DRIFT_THRESHOLD` or more is
  flagged for recalibration (scores are baseline-normalised: a pool should hover near 0.5);
- :func:`go_live_order` — where each pool stands on the road testing → prospecting →
  retargeting (highest tier number first): observed long enough (14 days), live, or out of order.

Each returns a frame with a boolean ``healthy`` (or ``flagged``/``ok``) per row, which the
asset checks turn into warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.signals import entity_baselines, window_metrics
from budget_pipeline.money import minor_factor

WEEK = timedelta(days=7)
HEALTHY_FIRES = (3, 7)  # budget actions fired per pool per week (SPEC §9)
MAX_CHANGES_PER_DAY = 1.0  # executed or observed changes per pool per day, on average
UTILISATION_RANGE = (0.70, 1.00)  # weekly spend ÷ (daily budget × 7)
BOUND_HIT_SHARE = 0.5  # a pool at its floor or ceiling in half the week's plans or more
DRIFT_DAYS = 30
DRIFT_THRESHOLD = 0.10  # absolute change of a pool's mean composite score
OBSERVATION_DAYS = 14  # days of plans in observe mode before a pool goes live (SPEC §9)
BUDGET_ACTIONS = ("increase", "decrease", "pause")


def _bounds(config: PoolsConfig) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pool": [p.name for p in config.pools],
            "tier": [p.tier for p in config.pools],
            "mode": [p.mode for p in config.pools],
            "floor": [config.floor_minor(p.name) for p in config.pools],
            "ceiling": [config.ceiling_minor(p.name) for p in config.pools],
        },
        schema={
            "pool": pl.Utf8,
            "tier": pl.Int64,
            "mode": pl.Utf8,
            "floor": pl.Int64,
            "ceiling": pl.Int64,
        },
    )


def budget_utilisation(
    con: duckdb.DuckDBPyConnection, config: PoolsConfig, as_of: datetime
) -> pl.DataFrame:
    """Per pool: ``daily_budget`` (minor units, now), ``week_spend`` (major units),
    ``utilisation`` (week spend ÷ 7 daily budgets), ``plans``, ``floor_hits``,
    ``ceiling_hits`` (plans of the week that left the pool at or past a bound), ``healthy``."""
    start = as_of - WEEK
    budgets = db.read(con, "select_ad_entities").filter(
        pl.col("budget_type") == "daily", pl.col("pool").is_not_null()
    )
    budget = budgets.group_by("pool").agg(daily_budget=pl.col("daily_budget").sum().cast(pl.Int64))
    spend = db.read(con, "select_pool_week_spend", {"start": start, "end": as_of})
    plans = db.read(con, "select_plan_pool_totals", {"start": start, "end": as_of})
    bounds = _bounds(config)
    hits = (
        plans.join(bounds, on="pool")
        .group_by("pool")
        .agg(
            plans=pl.len(),
            floor_hits=(pl.col("after") <= pl.col("floor")).sum(),
            ceiling_hits=(pl.col("after") >= pl.col("ceiling")).sum(),
        )
    )
    factor = minor_factor(config.currency)
    out = (
        bounds.join(budget, on="pool", how="left")
        .join(spend.select("pool", pl.col("spend").alias("week_spend")), on="pool", how="left")
        .join(hits, on="pool", how="left")
        .with_columns(
            pl.col("daily_budget").fill_null(0),
            pl.col("week_spend").fill_null(0.0).round(2),
            pl.col("plans").fill_null(0).cast(pl.Int64),
            pl.col("floor_hits").fill_null(0).cast(pl.Int64),
            pl.col("ceiling_hits").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            utilisation=pl.when(pl.col("daily_budget") > 0)
            .then(pl.col("week_spend") * factor / (pl.col("daily_budget") * 7))
            .otherwise(None)
            .round(3),
        )
    )
    low, high = UTILISATION_RANGE
    bound_share = (pl.col("floor_hits") + pl.col("ceiling_hits")) / pl.col("plans")
    return out.with_columns(
        healthy=(
            pl.col("utilisation").is_between(low, high).fill_null(False)
            & ((pl.col("plans") == 0) | (bound_share < BOUND_HIT_SHARE))
        ),
        note=pl.when(pl.col("utilisation").is_null())
        .then(pl.lit("no daily budget in this pool"))
        .when(pl.col("utilisation") < low)
        .then(pl.lit(f"under-spends: below {low:.0%} of its weekly budget"))
        .when(pl.col("utilisation") > high)
        .then(pl.lit("spent more than 7 daily budgets in the week"))
        .when((pl.col("plans") > 0) & (bound_share >= BOUND_HIT_SHARE))
        .then(pl.lit("at its floor or ceiling in half the week's plans or more: revisit bounds"))
        .otherwise(pl.lit("ok")),
    ).sort("tier", "pool")


def trigger_fire_rate(
    con: duckdb.DuckDBPyConnection, config: PoolsConfig, as_of: datetime
) -> pl.DataFrame:
    """Per pool: budget actions fired in the week (``fires``, by action), changes logged per
    day, and ``healthy`` (fires within :data:`HEALTHY_FIRES`, at most one change a day)."""
    start = as_of - WEEK
    fired = db.read(con, "select_trigger_actions_between", {"start": start, "end": as_of}).filter(
        pl.col("action").is_in(BUDGET_ACTIONS)
    )
    counts = fired.group_by("pool").agg(
        fires=pl.len(),
        increases=(pl.col("action") == "increase").sum(),
        decreases=(pl.col("action") == "decrease").sum(),
        pauses=(pl.col("action") == "pause").sum(),
    )
    log = db.read(con, "select_action_log_between", {"start": start, "end": as_of})
    changes = log.group_by("pool").agg(changes=pl.len())
    low, high = HEALTHY_FIRES
    return (
        _bounds(config)
        .select("pool", "tier")
        .join(counts, on="pool", how="left")
        .join(changes, on="pool", how="left")
        .with_columns(pl.exclude("pool", "tier").fill_null(0).cast(pl.Int64))
        .with_columns(changes_per_day=(pl.col("changes") / 7).round(2))
        .with_columns(
            healthy=pl.col("fires").is_between(low, high)
            & (pl.col("changes_per_day") <= MAX_CHANGES_PER_DAY),
            note=pl.when(pl.col("fires") < low)
            .then(pl.lit(f"fewer than {low} fires a week: thresholds may be too strict"))
            .when(pl.col("fires") > high)
            .then(pl.lit(f"more than {high} fires a week: triggers too sensitive"))
            .when(pl.col("changes_per_day") > MAX_CHANGES_PER_DAY)
            .then(pl.lit("more than one change a day on average: triggers too sensitive"))
            .otherwise(pl.lit("ok")),
        )
        .sort("tier", "pool")
    )


def learning_resets(
    con: duckdb.DuckDBPyConnection, config: PoolsConfig, as_of: datetime
) -> pl.DataFrame:
    """Budget changes of the week (applied, or observed in observe mode) larger than the
    learning limit: ``entity_id, pool, mode, before_budget, after_budget, change_pct``."""
    limit = config.settings.learning_limit_pct
    log = db.read(con, "select_action_log_between", {"start": as_of - WEEK, "end": as_of})
    change = (
        (pl.col("after_budget") - pl.col("before_budget")).abs() * 100 / pl.col("before_budget")
    )
    return (
        log.filter(pl.col("before_budget") > 0)
        .with_columns(change_pct=change.round(1))
        .filter(pl.col("change_pct") > limit)
        .select(
            "entity_id",
            "pool",
            "mode",
            "before_budget",
            "after_budget",
            "change_pct",
            "effective_at",
            "plan_id",
        )
        .sort("effective_at", "entity_id")
    )


def score_drift(
    con: duckdb.DuckDBPyConnection,
    config: PoolsConfig,
    as_of: datetime,
    entities: pl.DataFrame,
    windows: Sequence[int],
) -> pl.DataFrame:
    """Per pool: ``mean_now``, ``mean_then`` (:data:`DRIFT_DAYS` before), ``drift`` and
    ``flagged`` (|drift| ≥ :data:`DRIFT_THRESHOLD`). Both points are scored now, with the same
    config, so the drift is the account's, not a config change's."""
    then = as_of - timedelta(days=DRIFT_DAYS)
    points = [then, as_of]
    metrics = window_metrics(con, points, windows)
    baselines = entity_baselines(con, points, settings=config.settings, entities=entities)
    scores = score_entities(metrics, baselines, entities, config)
    means = (
        scores.filter(pl.col("status") == "scored")
        .group_by("pool", "as_of")
        .agg(mean=pl.col("score").mean(), scored=pl.len())
    )
    now = means.filter(pl.col("as_of") == as_of).select(
        "pool", pl.col("mean").alias("mean_now"), pl.col("scored").alias("scored_now")
    )
    before = means.filter(pl.col("as_of") == then).select(
        "pool", pl.col("mean").alias("mean_then"), pl.col("scored").alias("scored_then")
    )
    drift = pl.col("mean_now") - pl.col("mean_then")
    return (
        _bounds(config)
        .select("pool", "tier")
        .join(now, on="pool", how="left")
        .join(before, on="pool", how="left")
        .with_columns(
            pl.col("mean_now").round(3),
            pl.col("mean_then").round(3),
            drift=drift.round(3),
            flagged=(drift.abs() >= DRIFT_THRESHOLD).fill_null(False),
            note=pl.when(pl.col("mean_then").is_null())
            .then(pl.lit(f"no scores {DRIFT_DAYS} days ago: history too short to compare"))
            .when(pl.col("mean_now").is_null())
            .then(pl.lit("no scored entity now"))
            .when(drift.abs() >= DRIFT_THRESHOLD)
            .then(pl.lit("recalibrate: review weights and thresholds"))
            .otherwise(pl.lit("ok")),
        )
        .sort("tier", "pool")
    )


def go_live_order(con: duckdb.DuckDBPyConnection, config: PoolsConfig) -> pl.DataFrame:
    """Per pool in go-live order (highest tier number first: testing → prospecting →
    retargeting): ``mode``, ``plan_days`` (days with a plan), ``status`` and ``ok`` (False when
    a pool is live before every pool ahead of it)."""
    days = db.read(con, "select_plan_days_by_pool")
    pools = (
        _bounds(config)
        .select("pool", "tier", "mode")
        .join(days.select("pool", "plan_days"), on="pool", how="left")
        .with_columns(pl.col("plan_days").fill_null(0).cast(pl.Int64))
        .sort("tier", "pool", descending=[True, False])
        .with_row_index("step", offset=1)
    )
    live = pl.col("mode") == "live"
    # a pool ahead of this one (earlier step) still in observe mode
    observe_ahead = (~live).cast(pl.Int64).cum_sum().shift(1, fill_value=0) > 0
    first_observe = (~live) & ~observe_ahead
    return pools.with_columns(
        ok=~(live & observe_ahead),
        status=pl.when(live & observe_ahead)
        .then(pl.lit("live out of order: a pool ahead of it is still observed"))
        .when(live)
        .then(pl.lit("live"))
        .when(first_observe & (pl.col("plan_days") >= OBSERVATION_DAYS))
        .then(pl.lit("next: observed long enough to go live"))
        .when(first_observe)
        .then(pl.format("next: observing ({}/{} days)", "plan_days", pl.lit(OBSERVATION_DAYS)))
        .otherwise(pl.format("waits for the pools ahead ({} days observed)", "plan_days")),
    ).select("step", "pool", "tier", "mode", "plan_days", "status", "ok")
