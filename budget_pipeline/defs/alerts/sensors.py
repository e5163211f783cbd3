"""The alert sensors: one per kind of news, each reading only the Dagster event log.

All five run by default and do nothing until a channel is configured (see
``budget_pipeline/alerts/settings.py``); a tick never launches a run.
"""

import dagster as dg

from budget_pipeline.defs.alerts.ticks import alert_tick
from budget_pipeline.defs.resources import PoolsResource

INTERVAL_SECONDS = 60


def _alert_sensor(name: str, kind: str, description: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext, pools: PoolsResource) -> dg.SensorResult:
        return alert_tick(context, kind, pools)

    return _sensor


alert_on_plan_pause = _alert_sensor(
    "alert_on_plan_pause",
    "pause",
    "Slack/e-mail when a new rebalance plan pauses ad sets or campaigns (once per plan id).",
)
alert_on_failed_check = _alert_sensor(
    "alert_on_failed_check",
    "check_failed",
    "Slack/e-mail when a blocking check on rebalance_plan fails: the plan will not execute.",
)
alert_on_run_failure = _alert_sensor(
    "alert_on_run_failure",
    "run_failed",
    "Slack/e-mail when a budget_cycle_job or budget_execution_job run (or a UI/CLI "
    "materialization) fails, naming the step and its error.",
)
alert_on_partial_execution = _alert_sensor(
    "alert_on_partial_execution",
    "execution_partial",
    "Slack/e-mail when an execution leaves steps failed, skipped or deferred.",
)
alert_on_score_drift = _alert_sensor(
    "alert_on_score_drift",
    "score_drift",
    "Slack/e-mail when score_drift flags pools for recalibration.",
)

ALERT_SENSORS = [
    alert_on_plan_pause,
    alert_on_failed_check,
    alert_on_run_failure,
    alert_on_partial_execution,
    alert_on_score_drift,
]
