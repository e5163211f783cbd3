"""The monitoring job and its weekly schedule (built per ad account by
:func:`monitoring_definitions`; the module-level ones are the single account's)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from budget_pipeline.defs.constants import MONITORING
from budget_pipeline.defs.partitions import TIMEZONE


def monitoring_definitions(
    timezone: str = TIMEZONE, tags: Mapping[str, str] | None = None
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        "monitoring_job",
        selection=dg.AssetSelection.groups(MONITORING),
        tags=dict(tags) if tags else None,
        description="The weekly monitoring reports (SPEC §9) and their warning checks.",
    )

    @dg.schedule(
        name="weekly_monitoring_schedule",
        job=job,
        cron_schedule="0 7 * * 1",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "Mondays 07:00 account time (after the daily cycle): utilisation, trigger fire rate, "
            "learning resets, score drift and go-live order over the week before."
        ),
    )
    def weekly(context: dg.ScheduleEvaluationContext):
        return dg.RunRequest(run_key=f"monitoring-{context.scheduled_execution_time:%Y-%m-%d}")

    return job, weekly


monitoring_job, weekly_monitoring_schedule = monitoring_definitions()
