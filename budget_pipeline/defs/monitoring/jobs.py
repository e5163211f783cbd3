"""The monitoring job and its weekly schedule."""

from __future__ import annotations

import dagster as dg

from budget_pipeline.defs.constants import MONITORING
from budget_pipeline.defs.partitions import TIMEZONE

monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.groups(MONITORING),
    description="The weekly monitoring reports (SPEC §9) and their warning checks.",
)


@dg.schedule(
    job=monitoring_job,
    cron_schedule="0 7 * * 1",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Mondays 07:00 account time (after the daily cycle): utilisation, trigger fire rate, "
        "learning resets, score drift and go-live order over the week before."
    ),
)
def weekly_monitoring_schedule(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(run_key=f"monitoring-{context.scheduled_execution_time:%Y-%m-%d}")
