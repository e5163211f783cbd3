"""Jobs: the decision cycle (extract → plan + checks) and execution, kept apart so that only
the execution gate launches execution."""

from __future__ import annotations

import dagster as dg

from budget_pipeline.defs.constants import DECISIONS, EXECUTION, EXTRACTION, WAREHOUSE
from budget_pipeline.defs.partitions import daily_partitions

cycle_selection = dg.AssetSelection.groups(EXTRACTION, WAREHOUSE, DECISIONS)

budget_cycle_job = dg.define_asset_job(
    "budget_cycle_job",
    selection=cycle_selection,
    partitions_def=daily_partitions,
    description="Extract Insights (re-pulling recent days), baselines, scores, triggers, plan and its checks.",
)

budget_execution_job = dg.define_asset_job(
    "budget_execution_job",
    selection=dg.AssetSelection.groups(EXECUTION),
    description="Apply a checked plan (observe mode logs only). Launched by execution_gate.",
)
