"""Schedules: a daily cycle and an intraday one (every 30 minutes by default).

Built by :func:`cycle_schedules` for an account's job, partitions and timezone (each ad account
ticks on its own clock); the module-level schedules are the single account's.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from budget_pipeline.defs.jobs import budget_cycle_job
from budget_pipeline.defs.partitions import daily_partitions


def partition_for_tick(
    context: dg.ScheduleEvaluationContext,
    days_back: int,
    partitions_def: dg.TimeWindowPartitionsDefinition = daily_partitions,
) -> dg.RunRequest | dg.SkipReason:
    """The partition of the local day ``days_back`` before the tick; past the end of a
    bounded history (the simulated account) its last day; before the first, a skip."""
    tick = context.scheduled_execution_time
    local_day = tick.astimezone(ZoneInfo(partitions_def.timezone)).date() - timedelta(
        days=days_back
    )
    key = local_day.isoformat()
    if partitions_def.has_partition_key(key):
        return dg.RunRequest(partition_key=key)
    last = partitions_def.get_last_partition_key()
    if last is not None and key > last:
        return dg.RunRequest(partition_key=last)
    return dg.SkipReason(f"no partition for {key} yet (first: {partitions_def.start:%Y-%m-%d})")


def cycle_schedules(
    job: dg.UnresolvedAssetJobDefinition = budget_cycle_job,
    partitions_def: dg.TimeWindowPartitionsDefinition = daily_partitions,
) -> tuple[dg.ScheduleDefinition, dg.ScheduleDefinition]:
    """The daily and the intraday schedule of ``job``, in its account's timezone."""
    timezone = partitions_def.timezone

    @dg.schedule(
        name="daily_cycle_schedule",
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone=timezone,
        description="Daily at 06:00 account time: yesterday, complete (re-pulling the 2 days before) and a plan.",
    )
    def daily(context: dg.ScheduleEvaluationContext):
        return partition_for_tick(context, 1, partitions_def)

    @dg.schedule(
        name="intraday_30min_schedule",
        job=job,
        cron_schedule="*/30 * * * *",
        execution_timezone=timezone,
        description=(
            "Every 30 minutes: today so far (re-pulling the 2 days before); scores and plan are "
            "recomputed only at a new evaluation interval (or when their inputs change), and "
            "trigger persistence counts evaluation intervals, not runs."
        ),
    )
    def intraday(context: dg.ScheduleEvaluationContext):
        return partition_for_tick(context, 0, partitions_def)

    return daily, intraday


daily_cycle_schedule, intraday_30min_schedule = cycle_schedules()
