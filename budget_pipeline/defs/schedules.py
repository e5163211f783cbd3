"""Schedules: a daily cycle and an intraday one (every 30 minutes by default)."""

import dagster as dg

from budget_pipeline.defs.jobs import budget_cycle_job
from budget_pipeline.defs.partitions import TIMEZONE, daily_partitions


def _latest_partition_request(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    key = daily_partitions.get_last_partition_key(current_time=context.scheduled_execution_time)
    if key is None:
        return dg.SkipReason("no partition has started yet")
    return dg.RunRequest(partition_key=key)


@dg.schedule(
    job=budget_cycle_job,
    cron_schedule="0 6 * * *",
    execution_timezone=TIMEZONE,
    description="Daily at 06:00 account time: the newest day (re-pulling the last 3) and a plan.",
)
def daily_cycle_schedule(context: dg.ScheduleEvaluationContext):
    return _latest_partition_request(context)


@dg.schedule(
    job=budget_cycle_job,
    cron_schedule="*/30 * * * *",
    execution_timezone=TIMEZONE,
    description="Every 30 minutes: refresh today's Insights and re-plan (persistence counts intervals, not runs).",
)
def intraday_30min_schedule(context: dg.ScheduleEvaluationContext):
    return _latest_partition_request(context)
