"""The execution gate: the only thing that launches ``budget_execution``.

Each tick it (1) relaunches every plan an earlier run left unfinished — the run died, failed
or reported ``incomplete`` — so a started plan always finishes or is rolled back without an
operator, and (2) launches the newest plan once its blocking checks all passed on it. It reads
only the Dagster event log and run storage (never the DuckDB file), and the pools file when it
knows it (the sensor's ``pools`` resource; `budget-pipeline run`).

A plan is never given up: a run that failed is retried at the next tick, then with an
exponential backoff from the end of its last run (:func:`retry_delay`: 1, 2, 4 … minutes, at
most :data:`BACKOFF_MAX_SECONDS`), so a token that expired for a few minutes (or an outage)
costs a few retries, and each failed run alerts (the alert sensors watch failed and partial
runs). While the kill switch is on, or the plan's pools are in observe mode, execution would
only hold the plan: it is not relaunched (nor counted) until it may call again.

Everything is per ad account: the sensor takes its code location's account
(:func:`~budget_pipeline.defs.scope.repository_scope`), looks only at that account's plans and
execution runs, and tags the runs it launches with it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

import dagster as dg

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.defs.constants import FINISH_TAG, HELD_POOLS_TAG, OUTCOME_TAG, PLAN_ID_TAG
from budget_pipeline.defs.execution.gate import find_plan_record, plan_gate
from budget_pipeline.defs.jobs import EXECUTION_JOB
from budget_pipeline.defs.scope import (
    AccountScope,
    repository_resource,
    repository_scope,
    run_filter,
)

# Backoff between relaunches of an unfinished plan: the first retry at the next tick, then
# BACKOFF_FIRST_SECONDS, doubling, at most BACKOFF_MAX_SECONDS (one intraday cycle).
BACKOFF_FIRST_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 1800.0
RECENT_RUNS = 200
_IN_PROGRESS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}
_DIED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
_SETTLED = {"complete", "rolled_back", "observed", "nothing"}


def retry_delay(tries: int) -> float:
    """Seconds to wait after the end of the last of ``tries`` runs that left a plan
    unfinished before relaunching it."""
    if tries <= 1:
        return 0.0
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (tries - 2))


def execution_request(
    plan_id: str, *, finish_attempt: int | None = None, scope: AccountScope | None = None
) -> dg.RunRequest:
    tags = {**(scope.tags if scope is not None else {}), PLAN_ID_TAG: plan_id}
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


def _ended(record: dg.RunRecord) -> float:
    if record.end_time is not None:
        return record.end_time
    return record.update_timestamp.timestamp()


def _would_hold(pools: PoolsConfig, record: dg.RunRecord | None) -> str | None:
    """Why execution would only hold the plan now (None: it may call the API)."""
    if pools.settings.kill_switch:
        return "the kill switch is on"
    if record is None or record.dagster_run.tags.get(OUTCOME_TAG) != "held":
        return None
    held = [p for p in record.dagster_run.tags.get(HELD_POOLS_TAG, "").split(",") if p]
    modes = {p.name: p.mode for p in pools.pools}
    if held and all(modes.get(p) != "live" for p in held):
        return f"its pools ({', '.join(held)}) are in observe mode"
    return None


def unfinished_plan_requests(
    instance: dg.DagsterInstance,
    *,
    now: float | None = None,
    pools: PoolsConfig | None = None,
    backoff: bool = True,
    scope: AccountScope | None = None,
) -> Finishing:
    """A run request for every plan of the account left unfinished, unless a run of it is in
    progress, its backoff has not elapsed (``backoff=False``: an explicit `budget-pipeline run`
    tries now), or execution would only hold it (``pools``: the pools file now; None when
    unknown)."""
    now = time.time() if now is None else now
    runs: dict[str, list[dg.RunRecord]] = defaultdict(list)
    records = instance.get_run_records(
        filters=run_filter(scope, job_name=EXECUTION_JOB), limit=RECENT_RUNS
    )
    for record in records:  # newest first
        plan_id = record.dagster_run.tags.get(PLAN_ID_TAG)
        if plan_id:
            runs[plan_id].append(record)
    newest_plan = find_plan_record(instance, scope=scope)
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
        # A cycle that planned after the last run ended lists the plan iff it is unfinished.
        after_cycle = last is not None and (
            newest_plan is None or _ended(last) >= newest_plan.timestamp
        )
        if last is not None and plan_id not in listed and not after_cycle:
            continue  # not unfinished (a plan refused before it started, one settled)
        if outcome in _SETTLED and (plan_id not in listed or after_cycle):
            continue  # settled by a run that ended after the cycle listed it
        if outcome == "refused" and plan_id not in listed:
            continue  # never started: nothing to finish
        if (
            last is not None
            and outcome not in ("incomplete", "held", "refused")
            and outcome not in _SETTLED
            and last.dagster_run.status not in _DIED
        ):
            continue
        held = _would_hold(pools, last) if pools is not None else None
        if held:
            notes.append(f"plan {plan_id}: unfinished, not relaunched while {held}")
            continue
        if outcome == "held" and pools is None and after_cycle:
            continue  # held, pools unknown: tried again once per cycle
        tried = [r for r in history if r.dagster_run.tags.get(OUTCOME_TAG) != "held"]
        tries = len(tried)  # runs that were held did not try: they do not count
        wait = _ended(tried[0]) + retry_delay(tries) - now if tried and backoff else 0.0
        if wait > 0:
            notes.append(
                f"plan {plan_id}: unfinished after {tries} run(s); retried in {wait:.0f} s "
                "(backoff; each failed run alerts)"
            )
            continue
        requests.append(execution_request(plan_id, finish_attempt=len(history), scope=scope))
        notes.append(f"plan {plan_id}: relaunched to finish it (run {len(history) + 1})")
    return Finishing(requests, notes)


def gate_request(
    instance: dg.DagsterInstance,
    cursor: str | None,
    *,
    now: float | None = None,
    pools: PoolsConfig | None = None,
    backoff: bool = True,
    scope: AccountScope | None = None,
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the gate for the account of ``scope``. ``now`` (epoch seconds), ``pools``
    (the pools file as it is now, None when unknown) and ``backoff`` decide the relaunch of
    unfinished plans."""
    state = json.loads(cursor) if cursor else {}
    finishing = unfinished_plan_requests(
        instance, now=now, pools=pools, backoff=backoff, scope=scope
    )
    new = _newest_plan_request(instance, state, scope)
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


def _newest_plan_request(
    instance: dg.DagsterInstance, state: dict, scope: AccountScope | None
) -> _Newest:
    gate = plan_gate(instance, scope=scope)
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
    return _Newest(
        [execution_request(gate.plan_id, scope=scope)], f"plan {gate.plan_id}", new_cursor
    )


@dg.sensor(
    job_name=EXECUTION_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Finishes every plan an earlier run left unfinished, and launches budget_execution for "
        "the newest rebalance plan only when every blocking check passed on that very "
        "materialization; run key = plan id, so a plan starts once."
    ),
)
def execution_gate(context: dg.SensorEvaluationContext):
    return gate_request(
        context.instance,
        context.cursor,
        pools=_pools_now(context),
        scope=repository_scope(context),
    )


def _pools_now(context: dg.SensorEvaluationContext) -> PoolsConfig | None:
    """The pools file of the code location's ``pools`` resource; None when the sensor runs
    without its definitions or the file cannot be read (then a run reports it)."""
    try:
        resource = repository_resource(context, "pools")
        return resource.load() if resource is not None else None
    except Exception:
        return None
