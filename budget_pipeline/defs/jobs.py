"""Jobs: the decision cycle (extract → plan + checks) and execution, kept apart so that only
the execution gate launches execution.

Built by functions so each ad account gets its own (its partitions, its account tag on every
run, see :mod:`budget_pipeline.defs.accounts`); the module-level jobs are the single account's.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from budget_pipeline.defs.constants import DECISIONS, EXECUTION, EXTRACTION, WAREHOUSE
from budget_pipeline.defs.partitions import daily_partitions

CYCLE_JOB = "budget_cycle_job"
EXECUTION_JOB = "budget_execution_job"

cycle_selection = dg.AssetSelection.groups(EXTRACTION, WAREHOUSE, DECISIONS)


def cycle_job(
    partitions_def: dg.PartitionsDefinition = daily_partitions,
    tags: Mapping[str, str] | None = None,
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        CYCLE_JOB,
        selection=cycle_selection,
        partitions_def=partitions_def,
        tags=dict(tags) if tags else None,
        description="Extract Insights (re-pulling recent days), baselines, scores, triggers, plan and its checks.",
    )


def execution_job(tags: Mapping[str, str] | None = None) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        EXECUTION_JOB,
        selection=dg.AssetSelection.groups(EXECUTION),
        tags=dict(tags) if tags else None,
        description="Apply a checked plan (observe mode logs only). Launched by execution_gate.",
    )


budget_cycle_job = cycle_job()
budget_execution_job = execution_job()
