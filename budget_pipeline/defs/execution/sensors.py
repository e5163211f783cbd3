"""The execution gate: the only thing that launches ``budget_execution``."""

import json

import dagster as dg

from budget_pipeline.defs.constants import PLAN_ID_TAG
from budget_pipeline.defs.execution.gate import plan_gate
from budget_pipeline.defs.jobs import budget_execution_job


def gate_request(
    instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(cursor) if cursor else {}
    gate = plan_gate(instance)
    if gate.plan_id is None:
        return dg.SkipReason("no rebalance plan yet")
    if gate.plan_id == state.get("plan_id") and gate.storage_id == state.get("storage_id"):
        return dg.SkipReason(f"plan {gate.plan_id} already handled")
    if gate.pending and not gate.failures:
        # Checks still to run (the plan's run may be queued on the DuckDB pool): keep the
        # cursor where it is so a later tick looks at this plan again.
        return dg.SkipReason(f"plan {gate.plan_id}: waiting for {len(gate.pending)} check(s)")
    new_cursor = json.dumps({"plan_id": gate.plan_id, "storage_id": gate.storage_id})
    # Whoever launched it (this sensor, `budget-pipeline run`, the UI), a plan runs once.
    earlier = instance.get_run_records(
        filters=dg.RunsFilter(tags={PLAN_ID_TAG: gate.plan_id}), limit=1
    )
    if earlier:
        return dg.SensorResult(
            skip_reason=f"plan {gate.plan_id} already has execution run {earlier[0].dagster_run.run_id}",
            cursor=new_cursor,
        )
    if not gate.open:
        return dg.SensorResult(
            skip_reason=f"plan {gate.plan_id} blocked: {'; '.join(gate.failures)}",
            cursor=new_cursor,
        )
    if gate.changes == 0:
        return dg.SensorResult(skip_reason=f"plan {gate.plan_id} has no changes", cursor=new_cursor)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=gate.plan_id,  # at most one run per plan id, ever
                run_config={"ops": {"budget_execution": {"config": {"plan_id": gate.plan_id}}}},
                tags={PLAN_ID_TAG: gate.plan_id},
            )
        ],
        cursor=new_cursor,
    )


@dg.sensor(
    job=budget_execution_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Launches budget_execution for the newest rebalance plan only when every blocking "
        "check passed on that very materialization; run key = plan id, so a plan runs once."
    ),
)
def execution_gate(context: dg.SensorEvaluationContext):
    return gate_request(context.instance, context.cursor)
