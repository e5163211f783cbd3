"""From a schedule tick to an execution run, through the real Dagster machinery.

Each schedule's RunRequest is a single-partition run (as the daemon and the UI's "Materialize
latest" launch them); the execution gate must open on the plan it made and launch exactly one
execution run for it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster_helpers import ALL_KEYS, definitions, launch, run_cycle, tick_schedule, tick_sensor

from budget_pipeline.defs.constants import PLAN_ID_TAG

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("schedule", "when"),
    [
        ("daily_cycle_schedule", datetime(2026, 10, 31, 6, 0, tzinfo=BERLIN)),
        ("intraday_30min_schedule", datetime(2026, 10, 31, 9, 30, tzinfo=BERLIN)),
    ],
)
def test_a_schedule_tick_then_a_gate_tick_yield_exactly_one_execution_run(tmp_path, schedule, when):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "warehouse.duckdb"
    defs = definitions(db_path)
    # History first, as a range run (nothing executed), like a backfill from the UI.
    run_cycle(instance, db_path, ALL_KEYS[-36:-1])

    tick = tick_schedule(defs, instance, schedule, when)
    (request,) = tick.run_requests
    assert request.partition_key == ALL_KEYS[-1]
    cycle = launch(defs, instance, request, "budget_cycle_job")
    assert cycle.success
    plan = cycle.asset_materializations_for_node("rebalance_plan")[-1].metadata
    plan_id = plan["plan_id"].value
    assert plan["moves"].value > 0, "the default account's plan moves money"
    evaluations = cycle.get_asset_check_evaluations()
    assert len(evaluations) == 9 and all(e.passed for e in evaluations)

    gate = tick_sensor(defs, instance, "execution_gate")
    assert [r.run_key for r in gate.run_requests] == [plan_id], gate.skip_message
    execution = launch(defs, instance, gate.run_requests[0], "budget_execution_job")
    assert execution.success
    mat = execution.asset_materializations_for_node("budget_execution")
    done = next(m for m in mat if m.asset_key == dg.AssetKey("budget_execution")).metadata
    assert done["plan_id"].value == plan_id
    assert done["observed"].value == plan["moves"].value + plan["pauses"].value

    again = tick_sensor(defs, instance, "execution_gate", cursor=gate.cursor)
    assert again.run_requests == [] or again.run_requests is None
    runs = instance.get_run_records(dg.RunsFilter(tags={PLAN_ID_TAG: plan_id}))
    assert len(runs) == 1
