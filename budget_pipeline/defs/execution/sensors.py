"""The execution gate: the only thing that launches ``budget_execution``.

Each tick it (1) relaunches every plan an earlier run left unfinished — the run died, failed
or reported ``incomplete`` — so a started plan always finishes or is rolled back without an
operator, and (2) launches the newest plan once its blocking checks all passed on it. It reads
only the Dagster event log and run storage (never the DuckDB file).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

import dagster as dg

from budget_pipeline.defs.constants import FINISH_TAG, OUTCOME_TAG, PLAN_ID_TAG
from budget_pipeline.defs.execution.gate import find_plan_record, plan_gate
from budget_pipeline.defs.jobs import budget_execution_job

# Execution runs of one plan after which the gate stops relaunching it (the executor itself
# rolls an unfinishable plan back on its third pass; this only stops a plan that cannot even
# start, e.g. whose checks now fail, from being retried for ever).
MAX_RUNS_PER_PLAN = 6
RECENT_RUNS = 200
_IN_PROGRESS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}
_DIED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
_SETTLED = {"complete", "rolled_back", "observed", "nothing", "held"}


def execution_request(plan_id: str, *, finish_attempt: int | None = None) -> dg.RunRequest:
    tags = {PLAN_ID_TAG: plan_id}
    if finish_attempt is not None:
        tags[FINISH_TAG] = str(finish_attempt)
    return dg.RunRequest(
        # one run per plan id, and one per finishing attempt
        run_key=plan_id if finish_attempt is None else f"{plan_id}#finish-{finish_attempt}",
        run_config={"ops": {"budget_execution": {"config": {"plan_id": plan_id}}}},
        tags=tags,
    )


@dataclass(frozen=True)
class Finishing:
    requests: list[dg.RunRequest]
    notes: list[str]


def unfinished_plan_requests(instance: dg.DagsterInstance) -> Finishing:
    """A run request for every plan left unfinished, unless a run of it is in progress."""
    runs: dict[str, list[dg.RunRecord]] = defaultdict(list)
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=budget_execution_job.name), limit=RECENT_RUNS
    )
    for record in records:  # newest first
        plan_id = record.dagster_run.tags.get(PLAN_ID_TAG)
        if plan_id:
            runs[plan_id].append(record)
    newest_plan = find_plan_record(instance)
    listed: list[str] = []
    if newest_plan is not None:
        value = newest_plan.asset_materialization.metadata.get("unfinished_plans")
        listed = list(value.value) if value is not None else []
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    for plan_id in dict.fromkeys([*listed, *runs]):
        history = runs.get(plan_id, [])
        running = [r for r in history if r.dagster_run.status in _IN_PROGRESS]
        if running:
            if plan_id in listed:
                notes.append(f"plan {plan_id}: run {running[0].dagster_run.run_id} in progress")
            continue
        last = history[0] if history else None
        outcome = last.dagster_run.tags.get(OUTCOME_TAG) if last else None
        if last is not None and outcome in _SETTLED:
            # settled by a run that ended after the cycle listed it: nothing to finish
            ended = last.end_time or 0.0
            if plan_id not in listed or (newest_plan and ended >= newest_plan.timestamp):
                continue
        elif last is not None and outcome == "refused":
            if plan_id not in listed:
                continue
        elif last is not None and not (outcome == "incomplete" or last.dagster_run.status in _DIED):
            continue
        if len(history) >= MAX_RUNS_PER_PLAN:
            notes.append(
                f"plan {plan_id}: left unfinished after {len(history)} runs; see its action_log "
                "and finish or roll it back by hand"
            )
            continue
        requests.append(execution_request(plan_id, finish_attempt=len(history)))
        notes.append(f"plan {plan_id}: relaunched to finish it (run {len(history) + 1})")
    return Finishing(requests, notes)


def gate_request(
    instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    state = json.loads(cursor) if cursor else {}
    finishing = unfinished_plan_requests(instance)
    new = _newest_plan_request(instance, state)
    requests = finishing.requests + new.requests
    notes = "; ".join([*finishing.notes, new.note])
    if not requests:
        if new.cursor is None:
            return dg.SkipReason(notes)
        return dg.SensorResult(skip_reason=notes, cursor=new.cursor)
    return dg.SensorResult(run_requests=requests, cursor=new.cursor or cursor)


@dataclass(frozen=True)
class _Newest:
    requests: list[dg.RunRequest]
    note: str
    cursor: str | None  # None: keep the cursor (look at this plan again)


def _newest_plan_request(instance: dg.DagsterInstance, state: dict) -> _Newest:
    gate = plan_gate(instance)
    if gate.plan_id is None:
        return _Newest([], "no rebalance plan yet", None)
    if gate.plan_id == state.get("plan_id") and gate.storage_id == state.get("storage_id"):
        return _Newest([], f"plan {gate.plan_id} already handled", None)
    if gate.pending and not gate.failures:
        # Checks still to run (the plan's run may be queued on the DuckDB pool): keep the
        # cursor where it is so a later tick looks at this plan again.
        return _Newest([], f"plan {gate.plan_id}: waiting for {len(gate.pending)} check(s)", None)
    new_cursor = json.dumps({"plan_id": gate.plan_id, "storage_id": gate.storage_id})
    # Whoever launched it (this sensor, `budget-pipeline run`, the UI), a plan runs once.
    earlier = instance.get_run_records(
        filters=dg.RunsFilter(tags={PLAN_ID_TAG: gate.plan_id}), limit=1
    )
    if earlier:
        return _Newest(
            [],
            f"plan {gate.plan_id} already has execution run {earlier[0].dagster_run.run_id}",
            new_cursor,
        )
    if not gate.open:
        return _Newest([], f"plan {gate.plan_id} blocked: {'; '.join(gate.failures)}", new_cursor)
    if gate.changes == 0:
        return _Newest([], f"plan {gate.plan_id} has no changes", new_cursor)
    return _Newest([execution_request(gate.plan_id)], f"plan {gate.plan_id}", new_cursor)


@dg.sensor(
    job=budget_execution_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Finishes every plan an earlier run left unfinished, and launches budget_execution for "
        "the newest rebalance plan only when every blocking check passed on that very "
        "materialization; run key = plan id, so a plan starts once."
    ),
)
def execution_gate(context: dg.SensorEvaluationContext):
    return gate_request(context.instance, context.cursor)
