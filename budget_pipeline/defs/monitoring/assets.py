"""The weekly monitoring reports (SPEC §9), one asset each, with a warning check each.

Every report reads the warehouse as of its newest Insights hour and covers the week before it
(computed in :mod:`budget_pipeline.engine.monitoring`). Its check has severity WARN and is not
blocking: monitoring advises, it never stops a run. Each report carries a table a marketer
reads (money in major units, names next to ids), per-pool numbers the UI plots over the
weeks, and a chart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from budget_pipeline import db
from budget_pipeline.alerts import events
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.defs.charts import charts_dir
from budget_pipeline.defs.constants import DUCKDB_POOL, MONITORING
from budget_pipeline.defs.decisions.assets import rebalance_plan, windows_needed
from budget_pipeline.defs.display import (
    entity_labels,
    major_money_columns,
    money_columns,
    with_names,
)
from budget_pipeline.defs.monitoring.charts import pool_bars
from budget_pipeline.defs.resources import PoolsResource, Warehouse
from budget_pipeline.engine import monitoring
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.report import markdown_table

WARN = dg.AssetCheckSeverity.WARN


def _spec(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, blocking=False, description=description)


def _warn(spec: dg.AssetCheckSpec, problems: pl.DataFrame) -> dg.AssetCheckResult:
    """Passed when ``problems`` is empty; else a WARN naming them."""
    return dg.AssetCheckResult(
        check_name=spec.name,
        passed=problems.height == 0,
        severity=WARN,
        metadata={
            "problems": problems.height,
            "details": dg.MetadataValue.md(markdown_table(problems, max_rows=20)),
        },
    )


def _chart_dir(warehouse: Warehouse):
    return charts_dir(warehouse.database) / "monitoring"


def _week(as_of: datetime) -> str:
    return f"{as_of - monitoring.WEEK:%Y-%m-%d %H:%M} .. {as_of:%Y-%m-%d %H:%M}"


def _asset(name: str, description: str, spec: dg.AssetCheckSpec):
    return dg.asset(
        name=name,
        group_name=MONITORING,
        kinds={"duckdb", "polars"},
        pool=DUCKDB_POOL,
        deps=[rebalance_plan],
        check_specs=[spec],
        description=description,
    )


# --- budget utilisation ---------------------------------------------------------------------

UTILISATION_CHECK = _spec(
    "budget_utilisation",
    "budget_utilisation_healthy",
    "Each pool spent 70–100 % of 7 daily budgets in the week, and the week's plans left it at "
    "its floor or ceiling less than half the time.",
)


@_asset(
    "budget_utilisation",
    "Weekly, per pool: spend against 7 daily budgets (Meta may overspend a day by 75 %, so the "
    "week is the measure) and how often the week's plans left it at its floor or ceiling.",
    UTILISATION_CHECK,
)
def budget_utilisation(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        frame = monitoring.budget_utilisation(con, config, as_of)
    percent = [round(float(v or 0.0) * 100, 1) for v in frame["utilisation"]]
    table = major_money_columns(
        money_columns(
            frame.select(
                "pool",
                "mode",
                "floor",
                "ceiling",
                "daily_budget",
                "week_spend",
                pl.Series("utilisation", [f"{p} %" for p in percent]),
                "plans",
                "floor_hits",
                "ceiling_hits",
                "note",
            ),
            ["floor", "ceiling", "daily_budget"],
            config.currency,
        ),
        ["week_spend"],
        config.currency,
    )
    problems = frame.filter(~pl.col("healthy")).select("pool", "utilisation", "note")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "week": _week(as_of),
            "utilisation": dg.MetadataValue.md(markdown_table(table)),
            **{f"{p}/utilisation_pct": v for p, v in zip(frame["pool"], percent, strict=True)},
            **{
                f"{r['pool']}/floor_hits": int(r["floor_hits"]) for r in frame.iter_rows(named=True)
            },
            **{
                f"{r['pool']}/ceiling_hits": int(r["ceiling_hits"])
                for r in frame.iter_rows(named=True)
            },
            **pool_bars(
                frame["pool"].to_list(),
                percent,
                band=tuple(v * 100 for v in monitoring.UTILISATION_RANGE),
                ylabel="% of 7 daily budgets",
                title="Budget utilisation by pool, last 7 days",
                directory=_chart_dir(warehouse),
                stem=f"budget_utilisation-{as_of:%Y%m%d-%H%M}",
            ),
        },
        check_results=[_warn(UTILISATION_CHECK, problems)],
    )


# --- trigger fire rate ----------------------------------------------------------------------

FIRE_RATE_CHECK = _spec(
    "trigger_fire_rate",
    "trigger_fire_rate_healthy",
    "Each pool's triggers fired 3–7 budget actions in the week, and it changed budgets at most "
    "once a day on average.",
)


@_asset(
    "trigger_fire_rate",
    "Weekly, per pool: budget actions its triggers fired (3–7 a week is healthy) and changes "
    "logged per day (more than one on average: triggers too sensitive).",
    FIRE_RATE_CHECK,
)
def trigger_fire_rate(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        frame = monitoring.trigger_fire_rate(con, config, as_of)
    problems = frame.filter(~pl.col("healthy")).select("pool", "fires", "changes_per_day", "note")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "week": _week(as_of),
            "fire_rate": dg.MetadataValue.md(markdown_table(frame.drop("tier", "healthy"))),
            **{f"{r['pool']}/fires": int(r["fires"]) for r in frame.iter_rows(named=True)},
            **{
                f"{r['pool']}/changes_per_day": float(r["changes_per_day"])
                for r in frame.iter_rows(named=True)
            },
            **pool_bars(
                frame["pool"].to_list(),
                [float(v) for v in frame["fires"]],
                band=tuple(float(v) for v in monitoring.HEALTHY_FIRES),
                ylabel="budget actions fired",
                title="Trigger fire rate by pool, last 7 days",
                directory=_chart_dir(warehouse),
                stem=f"trigger_fire_rate-{as_of:%Y%m%d-%H%M}",
            ),
        },
        check_results=[_warn(FIRE_RATE_CHECK, problems)],
    )


# --- learning-phase resets ------------------------------------------------------------------

RESETS_CHECK = _spec(
    "learning_resets",
    "learning_resets_none",
    "No budget change in the week went above the learning limit (20 %): each such change "
    "sends the ad set back into Meta's learning phase.",
)


@_asset(
    "learning_resets",
    "Weekly: budget changes in the action log (applied, or observed in observe mode) above "
    "the learning limit, each a reset of Meta's learning phase.",
    RESETS_CHECK,
)
def learning_resets(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        frame = monitoring.learning_resets(con, config, as_of)
        labels = entity_labels(conform(db.read(con, "select_ad_entities"), AD_ENTITIES))
    counts = dict(frame.group_by("pool").len().iter_rows())
    pool_names = [p.name for p in config.pools]
    table = money_columns(
        with_names(frame, labels, campaign=False).with_columns(pl.col("change_pct").round(1)),
        ["before_budget", "after_budget"],
        config.currency,
    )
    problems = with_names(frame.select("entity_id", "pool", "change_pct"), labels, campaign=False)
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "week": _week(as_of),
            "learning_limit_pct": float(config.settings.learning_limit_pct),
            "resets": frame.height,
            "resets_table": dg.MetadataValue.md(markdown_table(table)),
            **{f"{p}/resets": int(counts.get(p, 0)) for p in pool_names},
            **pool_bars(
                pool_names,
                [float(counts.get(p, 0)) for p in pool_names],
                band=None,
                flagged=[counts.get(p, 0) > 0 for p in pool_names],
                ylabel="changes above the limit",
                title="Learning-phase resets by pool, last 7 days",
                directory=_chart_dir(warehouse),
                stem=f"learning_resets-{as_of:%Y%m%d-%H%M}",
            ),
        },
        check_results=[_warn(RESETS_CHECK, problems)],
    )


# --- score drift ----------------------------------------------------------------------------

DRIFT_CHECK = _spec(
    "score_drift",
    "score_drift_within_threshold",
    "No pool's mean composite score moved by 0.10 or more against 30 days ago (a flagged pool "
    "needs its weights and thresholds recalibrated).",
)


@_asset(
    "score_drift",
    "Weekly, per pool: the mean composite score now against 30 days ago, both scored with "
    "today's pools file; a pool that moved by 0.10 or more is flagged for recalibration "
    "(`flagged_pools`, which the alert_on_score_drift sensor reports).",
    DRIFT_CHECK,
)
def score_drift(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        frame = monitoring.score_drift(con, config, as_of, entities, windows_needed(config))
    flagged = frame.filter(pl.col("flagged"))["pool"].to_list()
    table = frame.select(
        "pool", "mean_now", "mean_then", "drift", "scored_now", "scored_then", "flagged", "note"
    )
    return dg.MaterializeResult(
        metadata={
            events.AS_OF: str(as_of),
            "compared_with": str(as_of - timedelta(days=monitoring.DRIFT_DAYS)),
            events.FLAGGED_POOLS: dg.MetadataValue.json(flagged),
            events.DRIFT_TABLE: dg.MetadataValue.md(markdown_table(table)),
            "threshold": monitoring.DRIFT_THRESHOLD,
            # only numbers that exist: a missing point is a gap in the plot, not a zero
            **{
                f"{r['pool']}/{key}": float(r[column])
                for r in frame.iter_rows(named=True)
                for key, column in (("mean_score", "mean_now"), ("drift", "drift"))
                if r[column] is not None
            },
            **pool_bars(
                frame["pool"].to_list(),
                [float(v or 0.0) for v in frame["drift"]],
                band=(-monitoring.DRIFT_THRESHOLD, monitoring.DRIFT_THRESHOLD),
                ylabel="mean score now − 30 days ago",
                title="Composite-score drift by pool",
                directory=_chart_dir(warehouse),
                stem=f"score_drift-{as_of:%Y%m%d-%H%M}",
            ),
        },
        check_results=[_warn(DRIFT_CHECK, frame.filter(pl.col("flagged")).select("pool", "drift"))],
    )


# --- go-live order --------------------------------------------------------------------------

GO_LIVE_CHECK = _spec(
    "go_live_order",
    "go_live_order_kept",
    "Pools go live one at a time in order testing → prospecting → retargeting (highest tier "
    "number first): no pool is live while one ahead of it is still observed.",
)


@_asset(
    "go_live_order",
    "Where each pool stands on the road testing → prospecting → retargeting: live, observing "
    "(days of plans against the 14 SPEC §9 asks), next to go live, or live out of order.",
    GO_LIVE_CHECK,
)
def go_live_order(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        frame = monitoring.go_live_order(con, config)
    live = frame.filter(pl.col("mode") == "live")["pool"].to_list()
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "order": " → ".join(frame["pool"].to_list()),
            "live_pools": dg.MetadataValue.json(live),
            "pools_live": len(live),
            "go_live": dg.MetadataValue.md(markdown_table(frame.drop("ok"))),
            **{f"{r['pool']}/plan_days": int(r["plan_days"]) for r in frame.iter_rows(named=True)},
            **pool_bars(
                frame["pool"].to_list(),
                [float(v) for v in frame["plan_days"]],
                band=None,
                flagged=[not ok for ok in frame["ok"]],
                ylabel="days with a plan",
                title="Go-live order: days observed (red: live out of order)",
                directory=_chart_dir(warehouse),
                stem=f"go_live_order-{as_of:%Y%m%d-%H%M}",
            ),
        },
        check_results=[
            _warn(GO_LIVE_CHECK, frame.filter(~pl.col("ok")).select("step", "pool", "status"))
        ],
    )


MONITORING_ASSETS = [
    budget_utilisation,
    trigger_fire_rate,
    learning_resets,
    score_drift,
    go_live_order,
]
