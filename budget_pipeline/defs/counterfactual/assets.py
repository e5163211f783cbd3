"""Counterfactual backfills: what a policy would have done on past days, and what it would have
earned (SPEC §9). Daily-partitioned; a range backfills in ONE run (single-run backfill policy):
the policy takes over on the first day of the range from the real budgets and plans every day
from its own would-have budgets (see :mod:`budget_pipeline.engine.counterfactual`).
"""

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from budget_pipeline import db
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.defs.charts import charts_dir
from budget_pipeline.defs.constants import COUNTERFACTUAL, DUCKDB_POOL
from budget_pipeline.defs.counterfactual.metadata import (
    outcome_day_metadata,
    outcomes_metadata,
    plan_day_metadata,
    plans_metadata,
)
from budget_pipeline.defs.counterfactual.simulator import (
    initial_state,
    real_changes,
    seeds_label,
    simulator_outcomes,
    would_have_changes,
)
from budget_pipeline.defs.decisions.assets import (
    CURVE_DAYS,
    min_budgets,
    pool_rules,
    windows_needed,
)
from budget_pipeline.defs.display import entity_labels
from budget_pipeline.defs.extraction.assets import ad_entities
from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.warehouse.assets import insights
from budget_pipeline.engine import counterfactual as cf
from budget_pipeline.engine.budget_history import CHANGES, budgets_on, changes_from_start
from budget_pipeline.engine.counterfactual_value import curve_outcomes
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.meta_rules import RuleError, load_rule
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.rule_policy import rule_window_hours
from budget_pipeline.money import minor_factor

LEVEL = 0.90  # the intervals' coverage
MONEY_COLUMNS = (
    "real_spend", "real_value", "would_have_spend", "would_have_value", "value_difference",
    "difference_low", "difference_high", "money_moved",
)  # fmt: skip
CURVE_INTERVAL = (
    f"{LEVEL:.0%} predictive interval: curve level and curvature uncertainty, purchase noise"
)


class CounterfactualPlansConfig(dg.Config):
    rule_path: str | None = Field(
        default=None,
        description=(
            "A Meta rule (adrules_library JSON) every pool runs instead of its own policy; "
            "relative paths are read from the working directory, then next to the pools file. "
            "Unset: each pool's policy from the pools file."
        ),
    )


class CounterfactualOutcomesConfig(dg.Config):
    seeds: int = Field(
        default=10,
        ge=0,
        le=200,
        description="Simulated account only: other seeds the interval of the difference is drawn from.",
    )


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=k) for k in range((end - first).days)]


def chosen_policy(
    rule_path: str | None, pools_path: str, config: PoolsConfig
) -> tuple[PoolsConfig, dict, str]:
    """(the config to plan with, the rule of each meta_rule pool, the policy in words)."""
    if rule_path is None:
        label = "pools file: " + ", ".join(f"{p.name} {p.policy}" for p in config.pools)
        return config, pool_rules(pools_path, config), label
    given = Path(rule_path).expanduser()
    tried = (
        [given] if given.is_absolute() else [Path.cwd() / given, Path(pools_path).parent / given]
    )
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise ConfigError(
            f"counterfactual_plans config rule_path={rule_path!r}: no such rule file (looked "
            f"at {', '.join(str(p) for p in tried)})"
        )
    try:
        rule = load_rule(path)
    except RuleError as exc:
        raise ConfigError(f"counterfactual_plans config rule_path={rule_path!r}: {exc}") from None
    raw = config.model_dump()
    raw["pools"] = [{**p, "policy": "meta_rule", "meta_rule": str(path)} for p in raw["pools"]]
    ruled = PoolsConfig.model_validate(raw)
    return ruled, {p.name: rule for p in ruled.pools}, f"Meta rule {path.name} in every pool"


def _real_changes(con, account: AdAccount, config: PoolsConfig) -> pl.DataFrame:
    """The budget and status changes really made: the simulated account's own record, or the
    pipeline's action log against the API."""
    if account.uses_api:
        return conform(db.read(con, "select_action_log_changes"), CHANGES)
    sim = account.open(con, config).account
    return changes_from_start(initial_state(sim), real_changes(sim))


@dg.asset(
    group_name=COUNTERFACTUAL,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[insights, ad_entities],
    description=(
        "For each day of the range, the plan the chosen policy (the pools file's, or a Meta "
        "rule given in config) would have made at 00:00 from the data before it, starting on "
        "the range's first day from the real budgets and carrying its own would-have budgets "
        "forward; trigger state replayed day by day. Table `counterfactual_plans`."
    ),
)
def counterfactual_plans(
    context: dg.AssetExecutionContext,
    config: CounterfactualPlansConfig,
    warehouse: Warehouse,
    pools: PoolsResource,
    account: AdAccount,
) -> dg.MaterializeResult:
    started = time.perf_counter()
    base = pools.load()
    plan_config, rules, policy = chosen_policy(config.rule_path, pools.path, base)
    days = _days(context)
    rule_hours = sorted({h for rule in rules.values() for h in rule_window_hours(rule)})
    with warehouse.connect() as con:
        latest = cycle_as_of(con)  # raises, naming what to run, on an empty warehouse
        known = [d for d in days if cf.midnight(d) <= latest]
        if len(known) < len(days):
            context.log.warning(
                f"{len(days) - len(known)} day(s) of the range start after the newest Insights "
                f"({latest}): no plan for them"
            )
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        real = budgets_on(entities, _real_changes(con, account, base), known)
        plans = cf.replay_plans(
            con,
            entities,
            real,
            plan_config,
            days=known,
            window_hours=windows_needed(plan_config),
            rule_hours=rule_hours,
            daily=lambda as_of: daily_performance(con, as_of, CURVE_DAYS),
            first_seen=db.read(con, "select_insights_first_hours"),
            rules=rules,
            min_budgets=min_budgets(con, plan_config, entities),
        )
        db.replace(
            con,
            plans.with_columns(policy=pl.lit(policy), created_at=pl.lit(_utcnow())),
            delete="delete_counterfactual_plans_window",
            insert="insert_counterfactual_plans",
            staged_as="staged_counterfactual_plans",
            params={"start": days[0], "end": days[-1]},
        )
    summary = cf.plan_summary(plans)
    currency = base.currency
    for key, metadata in plan_day_metadata(summary, days, currency).items():
        context.add_asset_metadata(metadata, partition_key=key)
    metadata = plans_metadata(plans, summary, entity_labels(entities), currency, policy)
    seconds = round(time.perf_counter() - started, 2)
    return dg.MaterializeResult(metadata=metadata | {"seconds": seconds})


@dg.asset(
    group_name=COUNTERFACTUAL,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[counterfactual_plans],
    description=(
        "What the would-have budgets would have earned against what the real ones did, per "
        "pool and day, with a 90 % interval: on the simulated account its own truth (the "
        "would-have changes replayed on the same world; interval over other seeds) and the "
        "response-curve estimate; against the API the estimate (per-holder curves, pooled "
        "for thin data). Table `counterfactual_outcomes`."
    ),
)
def counterfactual_outcomes(
    context: dg.AssetExecutionContext,
    config: CounterfactualOutcomesConfig,
    warehouse: Warehouse,
    pools: PoolsResource,
    account: AdAccount,
) -> dg.MaterializeResult:
    started = time.perf_counter()
    base = pools.load()
    days = _days(context)
    window = {"start": days[0], "end": days[-1]}
    with warehouse.connect() as con:
        plans = db.read(con, "select_counterfactual_plans_window", window)
        if not plans.height:
            raise RuntimeError(
                f"no counterfactual plans for {days[0]} .. {days[-1]}: materialize "
                "counterfactual_plans for these days first"
            )
        latest = db.scalar(con, "select_latest_insight_hour")
        over = sorted(
            d
            for d in set(plans["date"].to_list())
            if latest is not None and cf.midnight(d + timedelta(days=1)) <= latest
        )
        skipped = [str(d) for d in days if d not in over]
        if skipped:
            context.log.warning(
                f"no outcome for {len(skipped)} day(s) without a plan or not over yet: "
                f"{', '.join(skipped[:5])}"
            )
        stored, totals, method = (
            _outcomes(con, plans.filter(pl.col("date").is_in(over)), base, account, config.seeds)
            if over
            else (pl.DataFrame(), {}, "")
        )
        with db.transaction(con):
            db.run(con, "delete_counterfactual_outcomes_window", window)
            if stored.height:
                with db.staged(con, "staged_counterfactual_outcomes", stored):
                    db.run(con, "insert_counterfactual_outcomes")
    if not over:
        return dg.MaterializeResult(metadata={"evaluated_days": 0, "skipped_days": len(skipped)})
    summary = cf.plan_summary(plans.filter(pl.col("date").is_in(over)))
    headline = stored.filter(pl.col("method") == method)
    for key, metadata in outcome_day_metadata(headline, days).items():
        context.add_asset_metadata(metadata, partition_key=key)
    metadata = outcomes_metadata(
        stored,
        totals,
        method,
        summary,
        base.currency,
        charts=charts_dir(warehouse.database),
        days=(over[0], over[-1]),
    )
    return dg.MaterializeResult(
        metadata=metadata
        | {
            "evaluated_days": len(over),
            "skipped_days": len(skipped),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


def _outcomes(
    con, plans: pl.DataFrame, config: PoolsConfig, account: AdAccount, seeds: int
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame], str]:
    """(rows of counterfactual_outcomes, totals per method, the method that answers): the
    curve estimate always, the simulator's truth on the simulated account."""
    first, last = plans["date"].min(), plans["date"].max()
    holders = (
        plans.select(pl.col("entity_id").alias("holder_id"), "entity_type", "pool")
        .unique("holder_id")
        .sort("holder_id")
    )
    history = (last - first).days + 1 + CURVE_DAYS
    daily = daily_performance(con, cf.midnight(last + timedelta(days=1)), history)
    per_day, curve_totals = curve_outcomes(cf.would_have_budgets(plans), daily, holders, config)
    frames = [per_day.with_columns(interval=pl.lit(CURVE_INTERVAL))]
    totals, method = {"response_curves": curve_totals}, "response_curves"
    if not account.uses_api:
        sim = account.open(con, config).account
        changes = would_have_changes(
            sim, set(plans["entity_id"].to_list()), first, cf.plan_changes(plans)
        )
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        adset_pools = (
            entities.filter(pl.col("entity_type") == "adset")
            .select(pl.col("entity_id").alias("adset_id"), "pool")
            .drop_nulls("pool")
        )
        truth, totals["simulator"] = simulator_outcomes(
            sim, changes, adset_pools, first, last, seeds=seeds, level=LEVEL
        )
        frames.append(truth.with_columns(interval=pl.lit(seeds_label(seeds, LEVEL))))
        method = "simulator"
    summary = cf.plan_summary(plans).select("date", "pool", "edits", "moved")
    stored = (
        pl.concat(frames)
        .join(summary, on=["date", "pool"], how="left")
        .with_columns(
            edits=pl.col("edits").fill_null(0),
            money_moved=pl.col("moved").fill_null(0) / minor_factor(config.currency),
            policy=pl.lit(plans["policy"][0]),
            started_on=pl.lit(plans["started_on"].min()),
            created_at=pl.lit(_utcnow()),
        )
        .drop("moved")
        # to the cent: sums of floats in parallel group-bys differ in the last bits run to run
        .with_columns(pl.col(MONEY_COLUMNS).round(2))
        .with_columns(value_difference=(pl.col("would_have_value") - pl.col("real_value")).round(2))
    )
    return stored, totals, method


COUNTERFACTUAL_ASSETS = [counterfactual_plans, counterfactual_outcomes]
