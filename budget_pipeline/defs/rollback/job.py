"""``budget_rollback_job``: set an executed plan back to its before-values.

Launched by an operator with the plan id in its run config (the UI's Launchpad, or
``budget-pipeline rollback PLAN_ID``), never by a sensor. The work is
:func:`budget_pipeline.engine.rollback.roll_back_plan`: the executor's guards, ledger and
read-back-before-write, so a rerun after a crash sends nothing twice. The entries it appends
to ``action_log`` are reported as a materialization of that asset.

Built by :func:`rollback_job` for an ad account (its DuckDB pool and account tag); the
module-level job is the single account's.
"""

from collections.abc import Mapping

import dagster as dg

from budget_pipeline import db
from budget_pipeline.contracts import AD_ENTITIES, PLAN, conform
from budget_pipeline.defs.constants import DUCKDB_POOL, OUTCOME_TAG, ROLLBACK_TAG
from budget_pipeline.defs.decisions.assets import min_budget_minor
from budget_pipeline.defs.display import read_labels
from budget_pipeline.defs.execution.metadata import action_log_entries
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.engine.rollback import RollbackRefusedError, live_ledger, roll_back_plan


class RollbackConfig(dg.Config):
    plan_id: str  # the executed plan to set back, e.g. plan-20261031-0000-c60bffb7


class UnknownPlanError(ValueError):
    """No plan with this id in the warehouse."""


def _roll_back(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    warehouse: Warehouse,
    account: AdAccount,
    pools: PoolsResource,
):
    cfg = pools.load()
    plan_id = config.plan_id.strip()
    context.instance.add_run_tags(context.run_id, {ROLLBACK_TAG: plan_id})
    with warehouse.connect() as con:
        plan = conform(db.read(con, "select_rebalance_plan", {"plan_id": plan_id}), PLAN)
        if plan.height == 0:
            latest = db.scalar(con, "select_latest_plan_id")
            raise UnknownPlanError(
                f"plan_id {plan_id!r}: no such plan in {warehouse.database}"
                + (f" (the newest is {latest})" if latest else " (it holds no plan yet)")
            )
        live = live_ledger(con, plan_id).height > 0
        source = account.open(con, cfg) if live else None
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        try:
            result = roll_back_plan(
                con, plan, cfg, source=source, run_id=context.run_id,
                min_budget=min_budget_minor(con, cfg), entities=entities,
            )  # fmt: skip
        except RollbackRefusedError:
            context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "refused"})
            raise
        labels = read_labels(con)
        log_rows = db.scalar(con, "select_action_log_count")
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: f"rollback_{result.outcome}"})
    message = f"plan {plan_id}: {result.summary()}"
    if not live:
        message = f"plan {plan_id} applied no live step (observe mode): nothing to roll back"
    context.log.info(message)
    yield dg.AssetMaterialization(
        asset_key=account.scope().key("action_log"),  # the account's action_log
        description=message,
        metadata={
            "plan_id": plan_id,
            "rollback": result.outcome,
            "rolled_back": result.rolled_back,
            "skipped": result.skipped,
            "failed": result.failed,
            "already_rolled_back": result.already,
            "appended": result.log.height,
            "total_rows": int(log_rows),
            "entries": dg.MetadataValue.md(
                action_log_entries(result.log, labels, cfg.currency)
                if result.log.height
                else message
            ),
        },
    )
    if result.outcome == "incomplete":
        raise dg.Failure(
            description=f"{message}. Run the rollback again: it reads every budget back first "
            "and sends only what is still to set back."
        )
    yield dg.Output(result.outcome)


def rollback_job(
    pool: str = DUCKDB_POOL, tags: Mapping[str, str] | None = None
) -> dg.JobDefinition:
    """``budget_rollback_job``, its op taking turns on ``pool`` (the account's warehouse)."""

    @dg.op(
        name="roll_back_plan_op",
        pool=pool,
        description="Set every move a plan applied live back to its before-value, at most once.",
    )
    def roll_back_plan_op(
        context: dg.OpExecutionContext,
        config: RollbackConfig,
        warehouse: Warehouse,
        account: AdAccount,
        pools: PoolsResource,
    ):
        yield from _roll_back(context, config, warehouse, account, pools)

    @dg.job(
        name="budget_rollback_job",
        tags=dict(tags) if tags else None,
        description=(
            "Roll an executed plan back to its before-values (run config: "
            "ops.roll_back_plan_op.config.plan_id). Same guards, ledger and exactly-once path as "
            "execution; a budget changed since by someone else is skipped and reported."
        ),
    )
    def budget_rollback_job():
        roll_back_plan_op()

    return budget_rollback_job


budget_rollback_job = rollback_job()


def rollback_run_config(plan_id: str) -> dict:
    return {"ops": {"roll_back_plan_op": {"config": {"plan_id": plan_id}}}}
