"""Did a plan pass every blocking check? Answered from the Dagster event log only (the sensor
must stay fast and must not open the DuckDB file).

A check evaluation counts for a plan when it ran on that very materialization of
``rebalance_plan``: Dagster names the materialization it targeted (range runs), or — in a
single-partition run, as every schedule tick and the UI's "Materialize latest" launch, where
Dagster records no target — the evaluation carries the plan's id in its metadata and was made
in the plan's own run or after the plan was materialized. A result for an older
materialization never counts.

Every lookup takes the account's scope (:mod:`budget_pipeline.defs.scope`): its plan key, and
only plans whose materialization names its ad account, so accounts sharing one instance never
see each other's plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.scope import AccountScope, owns_record, owns_run, plan_key

# How far back the gate looks for a plan's materialization and its check evaluations.
PLAN_HISTORY = 100
CHECK_HISTORY = 50
_EVALUATED = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class PlanGate:
    plan_id: str | None
    storage_id: int | None
    changes: int  # budget moves + pauses in the plan
    failures: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # checks not yet run on this plan
    newest: bool = True  # the plan is rebalance_plan's newest materialization

    @property
    def open(self) -> bool:
        return self.plan_id is not None and not self.failures and not self.pending


def check_keys(scope: AccountScope | None = None) -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(plan_key(scope), g.name) for g in GUARDS]


def _plan_id_of(record: dg.EventLogRecord) -> str | None:
    meta = record.asset_materialization.metadata if record.asset_materialization else {}
    value = meta.get("plan_id")
    return str(value.value) if value is not None else None


def plan_records(
    instance: dg.DagsterInstance, limit: int = PLAN_HISTORY, scope: AccountScope | None = None
) -> list[dg.EventLogRecord]:
    """The account's ``rebalance_plan`` materializations (of the last ``limit``), newest first."""
    records = instance.fetch_materializations(plan_key(scope), limit=limit).records
    return [r for r in records if owns_record(scope, r)]


def find_plan_record(
    instance: dg.DagsterInstance,
    plan_id: str | None = None,
    scope: AccountScope | None = None,
) -> dg.EventLogRecord | None:
    """The newest materialization of ``plan_id`` (default: the account's newest plan)."""
    for record in plan_records(instance, scope=scope):
        if plan_id is None or _plan_id_of(record) == plan_id:
            return record
    return None


def _evaluation_for(
    instance: dg.DagsterInstance,
    key: dg.AssetCheckKey,
    record: dg.EventLogRecord,
    plan_id: str,
    scope: AccountScope | None = None,
) -> tuple[str, dg.AssetCheckEvaluation | None]:
    """("done", evaluation) | ("pending", None) for ``key`` on the plan materialization."""
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=CHECK_HISTORY)
    for rec in history:  # newest first
        same_run = rec.run_id == record.run_id
        evaluation = rec.evaluation if rec.status.value in _EVALUATED else None
        if evaluation is None:  # planned, not evaluated yet (its step may wait for the pool)
            if (same_run or rec.create_timestamp >= record.timestamp) and _in_progress(
                instance, rec.run_id, scope
            ):
                return "pending", None
            continue  # planned by a run that ended without evaluating it (a failed cycle)
        target = evaluation.target_materialization_data
        if target is not None:
            if target.storage_id == record.storage_id:
                return "done", evaluation
            continue
        meta = evaluation.metadata.get("plan_id")
        evaluated_at = rec.event.timestamp if rec.event else rec.create_timestamp
        if (
            meta is not None
            and str(meta.value) == plan_id
            and (same_run or evaluated_at >= record.timestamp)
        ):
            return "done", evaluation
    return "pending", None


def _in_progress(
    instance: dg.DagsterInstance, run_id: str, scope: AccountScope | None = None
) -> bool:
    """A run of the account (another account's cycle checks another plan) still going."""
    run = instance.get_run_by_id(run_id)
    return owns_run(scope, run) and not run.is_finished


def plan_gate(
    instance: dg.DagsterInstance, plan_id: str | None = None, scope: AccountScope | None = None
) -> PlanGate:
    """A plan of the account (default: its newest) and whether every blocking check passed
    *for that materialization* (a check result for an older materialization does not count)."""
    newest = find_plan_record(instance, scope=scope)
    if newest is None:
        return PlanGate(None, None, 0, ["rebalance_plan has never been materialized"])
    record = newest if plan_id is None else find_plan_record(instance, plan_id, scope)
    if record is None:
        return PlanGate(
            plan_id,
            None,
            0,
            [f"plan {plan_id} is not among rebalance_plan's last {PLAN_HISTORY} materializations"],
            newest=False,
        )
    meta = record.asset_materialization.metadata
    pid = _plan_id_of(record)
    changes = sum(int(meta[k].value) for k in ("moves", "pauses") if k in meta)
    failures: list[str] = []
    pending: list[str] = []
    for key in check_keys(scope):
        state, evaluation = _evaluation_for(instance, key, record, pid or "", scope)
        if state == "pending":
            pending.append(f"{key.name}: not yet evaluated on this plan")
        elif not evaluation.passed:
            failures.append(f"{key.name}: failed")
    return PlanGate(
        pid,
        record.storage_id,
        changes,
        failures,
        pending,
        newest=record.storage_id == newest.storage_id,
    )
