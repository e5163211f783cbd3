"""Blocking checks on ``rebalance_plan``: a failing one stops ``budget_execution`` in the same
run, and the ``execution_gate`` sensor launches execution only for a plan that passed all."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import LAST_CHANGES, PLAN, conform
from budget_pipeline.defs.constants import DUCKDB_POOL
from budget_pipeline.defs.decisions.assets import min_budget_minor, rebalance_plan
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.scope import AccountScope
from budget_pipeline.engine import guards
from budget_pipeline.engine.report import markdown_table


@dataclass(frozen=True)
class GuardInputs:
    plan: pl.DataFrame
    config: PoolsConfig
    last_changes: pl.DataFrame
    as_of: datetime | None
    min_budget: int  # minor units: the stricter of the configured and Meta's minimum
    in_learning: pl.DataFrame  # entity_id, in_learning (empty without the Marketing API)


@dataclass(frozen=True)
class Guard:
    name: str
    description: str
    run: Callable[[GuardInputs], pl.DataFrame]


GUARDS: tuple[Guard, ...] = (
    Guard(
        "rebalance_plan_within_floors",
        "No pool's daily total ends below its floor (unless it only moved toward it).",
        lambda i: guards.check_floors(i.plan, i.config),
    ),
    Guard(
        "rebalance_plan_within_ceilings",
        "No pool's daily total ends above its ceiling (unless it only moved toward it).",
        lambda i: guards.check_ceilings(i.plan, i.config),
    ),
    Guard(
        "rebalance_plan_learning_limit",
        "No single change exceeds the learning cap (default 15 %, never above 20 %).",
        lambda i: guards.check_learning_limit(
            i.plan, min(i.config.settings.learning_cap_pct, i.config.settings.learning_limit_pct)
        ),
    ),
    Guard(
        "rebalance_plan_conserves_money",
        "The sum of new budgets equals the sum of old budgets, to the minor unit.",
        lambda i: guards.check_conservation(i.plan),
    ),
    Guard(
        "rebalance_plan_min_interval",
        "No entity changed within the minimum interval, nor more than Meta's edits per hour.",
        lambda i: guards.check_min_interval(
            i.plan,
            i.last_changes,
            i.as_of,
            i.config.settings.min_change_interval_hours,
            i.config.settings.max_changes_per_hour,
        ),
    ),
    Guard(
        "rebalance_plan_locked_untouched",
        "Locked entities are never moved nor paused.",
        lambda i: guards.check_locked(i.plan, i.config),
    ),
    Guard(
        "rebalance_plan_min_budget",
        "No budget goes below the account's minimum budget per ad set.",
        lambda i: guards.check_min_budget(i.plan, i.min_budget),
    ),
    Guard(
        "rebalance_plan_pause_keeps_budget",
        "A paused entity keeps its stored budget, and every row's action agrees with pause.",
        lambda i: guards.check_pause_keeps_budget(i.plan),
    ),
    Guard(
        "rebalance_plan_skips_learning",
        "With skip_learning, no ad set still in Meta's learning phase is moved.",
        lambda i: guards.check_in_learning(
            i.plan,
            i.in_learning if i.config.settings.skip_learning else i.in_learning.clear(),
        ),
    ),
)


def latest_plan_id(
    instance: dg.DagsterInstance | None,
    con: duckdb.DuckDBPyConnection,
    scope: AccountScope | None = None,
) -> str | None:
    """The plan id of the scope's newest ``rebalance_plan`` materialization (another account
    sharing the instance never counts), else the newest plan stored in its warehouse."""
    if instance is not None:
        from budget_pipeline.defs.execution.gate import find_plan_record

        record = find_plan_record(instance, scope=scope)
        if record is not None:
            value = record.asset_materialization.metadata.get("plan_id")
            if value is not None:
                return str(value.value)
    return db.scalar(con, "select_latest_plan_id")


def guard_results(
    con: duckdb.DuckDBPyConnection, plan_id: str, config: PoolsConfig
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The stored plan and, per guard, its violations (empty frame = passed)."""
    plan = conform(db.read(con, "select_rebalance_plan", {"plan_id": plan_id}), PLAN)
    meta = db.one(con, "select_rebalance_plan_meta", {"plan_id": plan_id})
    as_of = meta[0] if meta else None
    last_changes = conform(
        db.read(con, "select_last_changes", {"as_of": as_of, "plan_id": plan_id}), LAST_CHANGES
    )
    inputs = GuardInputs(
        plan,
        config,
        last_changes,
        as_of,
        min_budget_minor(con, config),
        db.read(con, "select_learning_stages"),
    )
    return plan, {g.name: g.run(inputs) for g in GUARDS}


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(g.name, asset=rebalance_plan, blocking=True, description=g.description)
        for g in GUARDS
    ],
    pool=DUCKDB_POOL,
)
def rebalance_plan_guards(
    context: dg.AssetCheckExecutionContext,
    warehouse: Warehouse,
    pools: PoolsResource,
    account: AdAccount,
):
    config = pools.load()
    with warehouse.connect() as con:
        plan_id = latest_plan_id(context.instance, con, account.scope())
        if plan_id is None:
            for g in GUARDS:
                yield dg.AssetCheckResult(
                    check_name=g.name, passed=False, metadata={"error": "no plan stored"}
                )
            return
        plan, results = guard_results(con, plan_id, config)
    for name, violations in results.items():
        yield dg.AssetCheckResult(
            check_name=name,
            passed=violations.height == 0,
            metadata={
                "plan_id": plan_id,
                "rows_checked": plan.height,
                "violations": violations.height,
                "details": dg.MetadataValue.md(markdown_table(violations, max_rows=20)),
            },
        )
