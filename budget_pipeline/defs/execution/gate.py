"""Did the newest plan pass every blocking check? Answered from the Dagster event log only
(the sensor must stay fast and must not open the DuckDB file)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from budget_pipeline.defs.decisions.assets import rebalance_plan
from budget_pipeline.defs.decisions.checks import GUARDS


@dataclass(frozen=True)
class PlanGate:
    plan_id: str | None
    storage_id: int | None
    changes: int  # budget moves + pauses in the plan
    failures: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # checks not yet run on this plan

    @property
    def open(self) -> bool:
        return self.plan_id is not None and not self.failures and not self.pending


def check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(rebalance_plan.key, g.name) for g in GUARDS]


def plan_gate(instance: dg.DagsterInstance, plan_id: str | None = None) -> PlanGate:
    """The newest ``rebalance_plan`` materialization and whether every blocking check passed
    *for that materialization* (a check result for an older plan does not count)."""
    records = instance.fetch_materializations(rebalance_plan.key, limit=1).records
    if not records:
        return PlanGate(None, None, 0, ["rebalance_plan has never been materialized"])
    record = records[0]
    meta = record.event_log_entry.asset_materialization.metadata
    newest = str(meta["plan_id"].value) if "plan_id" in meta else None
    changes = sum(int(meta[k].value) for k in ("moves", "pauses") if k in meta)
    if plan_id is not None and plan_id != newest:
        return PlanGate(
            plan_id, None, changes, [f"plan {plan_id} is not the newest plan ({newest})"]
        )
    failures: list[str] = []
    pending: list[str] = []
    for key in check_keys():
        check = instance.get_latest_asset_check_evaluation_record(key)
        evaluation = check.event.asset_check_evaluation if check and check.event else None
        target = evaluation.target_materialization_data if evaluation else None
        if target is None or target.storage_id != record.storage_id:
            # not run on this materialization yet (e.g. its step waits for the DuckDB pool)
            pending.append(f"{key.name}: not yet evaluated on this plan")
        elif not evaluation.passed:
            failures.append(f"{key.name}: failed")
    return PlanGate(newest, record.storage_id, changes, failures, pending)
