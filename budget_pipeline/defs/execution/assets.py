"""Execution: apply a plan that passed every blocking check, at most once per plan id."""

import dagster as dg
import polars as pl

from budget_pipeline import db
from budget_pipeline.defs.constants import DUCKDB_POOL, EXECUTION, HELD_POOLS_TAG, OUTCOME_TAG
from budget_pipeline.defs.decisions.assets import rebalance_plan
from budget_pipeline.defs.decisions.checks import guard_results, latest_plan_id
from budget_pipeline.defs.display import read_labels
from budget_pipeline.defs.execution.gate import plan_gate
from budget_pipeline.defs.execution.metadata import action_log_entries
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.scope import ACCOUNT_METADATA
from budget_pipeline.engine.execution import execute_plan, execution_steps


class ExecutionConfig(dg.Config):
    plan_id: str | None = None  # the plan to apply; default: the newest one


class PlanRefusedError(RuntimeError):
    """The plan did not pass its checks; nothing was executed."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "budget_execution",
            deps=[rebalance_plan],
            group_name=EXECUTION,
            kinds={"duckdb"},
            description=(
                "The execution ledger of a plan: each step observed (observe mode, the "
                "default: nothing is called), applied, skipped or failed. Launched only by "
                "the execution_gate sensor for a plan whose blocking checks all passed."
            ),
        ),
        dg.AssetSpec(
            "action_log",
            deps=[rebalance_plan],
            group_name=EXECUTION,
            kinds={"duckdb"},
            description="Append-only log of every action taken or observed, before/after values.",
        ),
    ],
    pool=DUCKDB_POOL,
)
def budget_execution(
    context: dg.AssetExecutionContext,
    config: ExecutionConfig,
    warehouse: Warehouse,
    account: AdAccount,
    pools: PoolsResource,
):
    cfg = pools.load()
    try:
        with warehouse.connect() as con:
            result, plan_id, steps = _execute(context, config, con, cfg, account)
            log_rows = db.scalar(con, "select_action_log_count")
            labels = read_labels(con)
    except PlanRefusedError:
        context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "refused"})
        raise
    tags = {OUTCOME_TAG: result.outcome}
    if result.outcome == "held":
        tags[HELD_POOLS_TAG] = ",".join(result.held_pools)
    context.instance.add_run_tags(context.run_id, tags)
    counts = result.counts()
    keys = {key.path[-1]: key for key in context.assets_def.keys}  # the account's (prefixed) keys
    context.log.info(
        f"plan {plan_id}: {result.outcome}; {counts or 'nothing to do'}; "
        f"{result.already_done} already done"
        + (f"; {result.reconciled} interrupted call(s) settled" if result.reconciled else "")
    )
    yield dg.MaterializeResult(
        asset_key=keys["budget_execution"],
        metadata={
            "plan_id": plan_id,
            ACCOUNT_METADATA: account.account_id,
            "outcome": result.outcome,
            "complete": result.outcome in ("complete", "observed", "nothing"),
            "attempt": result.attempt,
            "steps": steps.height,
            "observed": counts.get("observed", 0),
            "applied": counts.get("applied", 0),
            "skipped": counts.get("skipped", 0),
            "failed": counts.get("failed", 0),
            "deferred": counts.get("deferred", 0),
            "rolled_back": counts.get("rolled_back", 0),
            "open_steps": result.open_steps,
            "reconciled": result.reconciled,
            "already_done": result.already_done,
            "live_steps": int((steps["mode"] == "live").sum()),
            "kill_switch": cfg.settings.kill_switch,
        },
    )
    yield dg.MaterializeResult(
        asset_key=keys["action_log"],
        metadata={
            "plan_id": plan_id,
            "appended": result.log.height,
            "total_rows": int(log_rows),
            "entries": dg.MetadataValue.md(action_log_entries(result.log, labels, cfg.currency)),
        },
    )
    if result.outcome == "incomplete":
        failed = result.log.filter(pl.col("status").is_in(["failed", "deferred"]))
        raise PlanIncompleteError(
            f"plan {plan_id} is not finished after attempt {result.attempt}: "
            f"{result.open_steps} step(s) open; the execution gate retries it (an unfinishable "
            f"plan is rolled back). First problems: {failed['message'].head(3).to_list()}"
        )


class PlanIncompleteError(RuntimeError):
    """Live steps of the plan are still open; a later run finishes or rolls it back."""


def _execute(context, config: ExecutionConfig, con, cfg, account: AdAccount):
    scope = account.scope()  # this account's plans only: never another account's
    plan_id = config.plan_id or latest_plan_id(context.instance, con, scope)
    if plan_id is None:
        raise PlanRefusedError("no rebalance plan stored: materialize rebalance_plan first")
    # 1. A plan the ledger says is started is finished (or rolled back) whatever Dagster's
    #    event log still holds (its check history is bounded; DAGSTER_HOME may have been
    #    reset): its checks passed when it started, and the guards below run again. A plan not
    #    started needs the gate's verdict again: every blocking check passed for it.
    started = bool(db.scalar(con, "select_plan_started", {"plan_id": plan_id}))
    if not started:
        gate = plan_gate(context.instance, plan_id, scope)
        if not gate.open:
            raise PlanRefusedError(
                f"plan {plan_id} refused: {'; '.join(gate.failures + gate.pending)}"
            )
        if not gate.newest:
            raise PlanRefusedError(
                f"plan {plan_id} is not the newest plan and no run has started it: a stale "
                "plan is never started (only a started plan is finished)"
            )
    # 2. The guards once more on the stored plan, against the action log as it is now. A plan
    #    already under way that the guards now refuse is rolled back, never left half-applied.
    plan, results = guard_results(con, plan_id, cfg)
    broken = {k: v.height for k, v in results.items() if v.height}
    if broken and not started:
        raise PlanRefusedError(f"plan {plan_id} fails guards before execution: {broken}")
    roll_back = f"the guards now refuse it: {broken}" if broken else None
    if roll_back:
        context.log.warning(f"plan {plan_id} is rolled back: {roll_back}")
    steps = execution_steps(plan, cfg)
    source = account.open(con, cfg) if (steps["mode"] == "live").any() else None
    as_of = db.one(con, "select_rebalance_plan_meta", {"plan_id": plan_id})[0]
    result = execute_plan(
        con, steps, source=source, run_id=context.run_id, as_of=as_of, roll_back=roll_back
    )
    return result, plan_id, steps
