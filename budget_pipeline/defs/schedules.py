"""Schedules: a daily cycle and an intraday one (every 30 minutes by default)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from budget_pipeline.defs.jobs import budget_cycle_job
from budget_pipeline.defs.partitions import TIMEZONE, daily_partitions


def partition_for_tick(
    context: dg.ScheduleEvaluationContext, days_back: int
) -> dg.RunRequest | dg.SkipReason:
    """The partition of the local day ``days_back`` before the tick; past the end of a
    bounded history (the simulated account) its last day; before the first, a skip."""
    tick = context.scheduled_execution_time
    local_day = tick.astimezone(ZoneInfo(TIMEZONE)).date() - timedelta(days=days_back)
    key = local_day.isoformat()
    if daily_partitions.has_partition_key(key):
        return dg.RunRequest(partition_key=key)
    last = daily_partitions.get_last_partition_key()
    if last is not None and key > last:
        return dg.RunRequest(partition_key=last)
    return dg.SkipReason(f"no partition for {key} yet (first: {daily_partitions.start:%Y-%m-%d})")


@dg.schedule(
    job=budget_cycle_job,
    cron_schedule="0 6 * * *",
    execution_timezone=TIMEZONE,
    description="Daily at 06:00 account time: yesterday, complete (re-pulling the 2 days before) and a plan.",
)
def daily_cycle_schedule(context: dg.ScheduleEvaluationContext):
    return partition_for_tick(context, days_back=1)


@dg.schedule(
    job=budget_cycle_job,
    cron_schedule="*/30 * * * *",
    execution_timezone=TIMEZONE,
    description=(
        "Every 30 minutes: today so far (re-pulling the 2 days before) and a re-plan; "
        "trigger persistence counts evaluation intervals, not runs."
    ),
)
def intraday_30min_schedule(context: dg.ScheduleEvaluationContext):
    return partition_for_tick(context, days_back=0)
