"""The alert sensors over the real pipeline: real runs into a tmp DuckDB on an ephemeral
Dagster instance, sensor ticks through ``build_sensor_context``, messages caught by a real
webhook receiver and a real SMTP server on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from alerts.sensor_helpers import PAUSE_POOLS, newest_plan, pools_with_alerts, state, tick
from dagster_helpers import ALL_KEYS, resources, run_cycle, run_execution

from budget_pipeline import runner
from budget_pipeline.alerts.settings import SMTP_ENV
from budget_pipeline.config.alerts import SLACK_WEBHOOK_ENV
from budget_pipeline.defs.alerts.sensors import (
    ALERT_SENSORS,
    alert_on_failed_check,
    alert_on_plan_pause,
    alert_on_run_failure,
    alert_on_score_drift,
)
from budget_pipeline.defs.execution.sensors import execution_gate

KEYS = ALL_KEYS[-35:]  # enough history for scores; PAUSE_POOLS' plan pauses one ad set
PAUSED = "120210000012001"


def use_slack(monkeypatch, url: str) -> None:
    monkeypatch.setenv(SLACK_WEBHOOK_ENV, url)


def use_mail(monkeypatch, server) -> None:
    values = {
        "host": server.host, "port": str(server.port), "security": "none",
        "from_address": "budget@example.com", "to": "marketing@example.com, ops@example.com",
    }  # fmt: skip
    for field, value in values.items():
        monkeypatch.setenv(SMTP_ENV[field], value)


def test_a_pause_in_the_plan_alerts_once_by_slack_and_mail(
    tmp_path, webhook, plain_smtp, monkeypatch
):
    use_slack(monkeypatch, webhook.url)
    use_mail(monkeypatch, plain_smtp)
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "w.duckdb"
    run_cycle(instance, db_path, KEYS, pools_path=PAUSE_POOLS)
    plan = newest_plan(instance)
    assert plan["pauses"] == 1

    first = tick(alert_on_plan_pause, instance)
    (text,) = webhook.texts()
    assert f"Plan {plan['plan_id']} pauses 1 ad set(s) or campaign(s)" in text
    assert (
        f"• interest sustainability ({PAUSED}) in pool testing, daily budget 15.00 EUR "
        "kept: score_below_0.4_pause"
    ) in text  # named as rebalance_plan's moves_table names it
    assert f"<http://127.0.0.1:3000/runs/{plan['run_id']}|run {plan['run_id'][:8]}>" in text
    (mail,) = plain_smtp.mailbox.parsed()
    assert mail["To"] == "marketing@example.com, ops@example.com"
    assert plan["plan_id"] in mail["Subject"] and PAUSED in mail.get_content()
    assert (
        f"Run: {plan['run_id']} — http://127.0.0.1:3000/runs/{plan['run_id']}" in mail.get_content()
    )
    assert state(first)["after"] == plan["storage_id"]
    assert "1 new pause alert(s); 2 message(s) sent, 0 failed" in first.skip_reason.skip_message

    second = tick(alert_on_plan_pause, instance, first.cursor)
    assert len(webhook.posts) == 1 and len(plain_smtp.mailbox.messages) == 1
    # the next intraday run re-materializes the same plan: not news, not sent again
    run_cycle(instance, db_path, KEYS[-2:], pools_path=PAUSE_POOLS)
    again = newest_plan(instance)
    assert again["plan_id"] == plan["plan_id"] and again["storage_id"] > plan["storage_id"]
    third = tick(alert_on_plan_pause, instance, second.cursor)
    assert state(third)["after"] == again["storage_id"]
    assert len(webhook.posts) == 1 and len(plain_smtp.mailbox.messages) == 1


def test_nothing_configured_sends_nothing_and_switching_on_later_replays_nothing(
    tmp_path, webhook, monkeypatch
):
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, tmp_path / "w.duckdb", KEYS, pools_path=PAUSE_POOLS)
    results = {}
    for sensor in ALERT_SENSORS:
        results[sensor.name] = tick(sensor, instance)
        assert results[sensor.name].skip_reason.skip_message == (
            "alerts off: no alert channel configured"
        )
    assert state(results["alert_on_plan_pause"])["after"] == newest_plan(instance)["storage_id"]
    use_slack(monkeypatch, webhook.url)
    tick(alert_on_plan_pause, instance, results["alert_on_plan_pause"].cursor)
    assert webhook.posts == []
    # and a kind left out of `events` is off while the others are on
    pools = pools_with_alerts(tmp_path, events=["check_failed"])
    off = tick(alert_on_plan_pause, instance, pools_path=pools)
    assert off.skip_reason.skip_message == "alerts off: pause not in events"
    assert webhook.posts == []


DOWN_MODES = ["refused", "http_500", "never_answers"]


@pytest.mark.parametrize("mode", DOWN_MODES)
def test_slack_down_leaves_the_tick_bounded_the_pipeline_running_and_retries(
    mode, tmp_path, webhook, refused_port, silent_port, monkeypatch
):
    """Per-operation timeout 0.5 s, 1.5 s per tick: a dead webhook costs a tick at most that,
    the execution still runs, and the alert is retried until it gets through (or 3 tries)."""
    pools = pools_with_alerts(tmp_path, timeout_seconds=0.5, max_seconds_per_tick=1.5)
    down = {
        "refused": f"http://127.0.0.1:{refused_port}/hook",
        "http_500": webhook.url,
        "never_answers": f"http://127.0.0.1:{silent_port}/hook",
    }[mode]
    if mode == "http_500":
        webhook.status = 500
    use_slack(monkeypatch, down)
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "w.duckdb"
    run_cycle(instance, db_path, KEYS, pools_path=pools)

    start = time.monotonic()
    failed = tick(alert_on_plan_pause, instance, pools_path=pools)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"tick took {elapsed:.2f} s with the webhook {mode}"
    assert "0 message(s) sent, 1 failed" in failed.skip_reason.skip_message
    (pending,) = state(failed)["retry"]
    assert pending["channel"] == "slack" and pending["attempts"] == 1

    # the pipeline is not held up: the gate opens and the plan executes
    request = execution_gate(dg.build_sensor_context(instance=instance)).run_requests[0]
    execution = run_execution(
        instance, db_path, pools_path=pools, run_config=request.run_config, tags=request.tags
    )
    assert execution.success

    if mode == "never_answers":  # stays down: three tries in all, then dropped
        cursor = failed.cursor
        for attempt in (2, 3):
            start = time.monotonic()
            result = tick(alert_on_plan_pause, instance, cursor, pools_path=pools)
            assert time.monotonic() - start < 3.0
            cursor = result.cursor
            assert [r["attempts"] for r in state(result)["retry"]] == ([2] if attempt == 2 else [])
        return
    # the webhook is back (same URL fixed, or a working one configured): sent once
    webhook.status = 200
    use_slack(monkeypatch, webhook.url)
    back = tick(alert_on_plan_pause, instance, failed.cursor, pools_path=pools)
    assert state(back)["retry"] == []
    (text,) = webhook.texts()
    assert PAUSED in text
    tick(alert_on_plan_pause, instance, back.cursor, pools_path=pools)
    assert len(webhook.posts) == 1


def test_mail_server_down_leaves_the_tick_bounded_and_slack_still_told(
    tmp_path, webhook, silent_port, monkeypatch
):
    pools = pools_with_alerts(
        tmp_path,
        timeout_seconds=0.5,
        max_seconds_per_tick=1.5,
        email={"host": "127.0.0.1", "port": silent_port, "security": "none",
               "from_address": "budget@example.com", "to": ["marketing@example.com"]},
    )  # fmt: skip
    use_slack(monkeypatch, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, tmp_path / "w.duckdb", KEYS, pools_path=pools)
    start = time.monotonic()
    result = tick(alert_on_plan_pause, instance, pools_path=pools)
    assert time.monotonic() - start < 3.0
    assert len(webhook.posts) == 1
    assert [(r["channel"], r["attempts"]) for r in state(result)["retry"]] == [("email", 1)]


def _lock_a_moved_entity(db_path: Path, tmp_path: Path) -> tuple[Path, str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        pool, entity = con.execute(
            "SELECT pool, entity_id FROM rebalance_plans WHERE delta != 0 ORDER BY entity_id LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    config = yaml.safe_load(PAUSE_POOLS.read_text())
    for p in config["pools"]:
        if p["name"] == pool:
            p["locked"] = [entity]
    path = tmp_path / "pools_locked.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, entity


def test_a_failed_blocking_check_alerts_once_and_its_failed_run_is_not_told_twice(
    tmp_path, webhook, monkeypatch
):
    use_slack(monkeypatch, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "w.duckdb"
    run_cycle(instance, db_path, KEYS, pools_path=PAUSE_POOLS)
    plan = newest_plan(instance)
    checks = tick(alert_on_failed_check, instance)  # the passing checks: nothing to say
    runs = tick(alert_on_run_failure, instance)
    assert webhook.posts == []
    # the operator locks an entity the plan moves; the checks run again and one fails
    locked, entity = _lock_a_moved_entity(db_path, tmp_path)
    failed = runner.run_plan_checks(instance, resources=resources(db_path, locked))
    assert not failed.success

    checks = tick(alert_on_failed_check, instance, checks.cursor)
    (text,) = webhook.texts()
    assert f"Plan {plan['plan_id']} blocked: 1 blocking check(s) failed" in text
    assert (
        "• rebalance_plan_locked_untouched — 1 violation(s): Locked entities are never moved "
        f"nor paused. Affects {entity}." in text
    )
    assert f"/runs/{failed.run_id}|" in text
    tick(alert_on_failed_check, instance, checks.cursor)
    runs = tick(alert_on_run_failure, instance, runs.cursor)
    assert len(webhook.posts) == 1  # the run failure is the same news
    # with check alerts off, the failed run itself is told
    only_runs = pools_with_alerts(tmp_path, events=["run_failed"])
    tick(alert_on_run_failure, instance, json.dumps({"after": None}), pools_path=only_runs)
    assert len(webhook.posts) == 2
    assert "Step rebalance_plan_guards failed: DagsterAssetCheckFailedError" in webhook.texts()[1]


def test_a_failed_run_alerts_once_with_its_step_and_error_and_other_jobs_stay_quiet(
    tmp_path, webhook, monkeypatch
):
    use_slack(monkeypatch, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    # execution with no plan in an empty warehouse: the asset refuses and the run fails
    refused = run_execution(
        instance, tmp_path / "empty.duckdb", tags={"budget_pipeline/plan_id": "plan-x"}
    )
    assert not refused.success

    @dg.op
    def unrelated():
        raise ValueError("not ours")

    @dg.job
    def someone_elses_job():
        unrelated()

    assert not someone_elses_job.execute_in_process(instance=instance, raise_on_error=False).success
    first = tick(alert_on_run_failure, instance)
    (text,) = webhook.texts()
    assert text.startswith("*Run failed: budget_execution_job*")
    assert (
        "Step budget_execution failed: PlanRefusedError: no rebalance plan stored: "
        "materialize rebalance_plan first" in text
    )
    assert f"Plan `plan-x` · <http://127.0.0.1:3000/runs/{refused.run_id}|" in text
    assert "not ours" not in text
    tick(alert_on_run_failure, instance, first.cursor)
    assert len(webhook.posts) == 1


def test_score_drift_flags_alert_and_an_empty_list_does_not(tmp_path, webhook, monkeypatch):
    """``score_drift`` is the monitoring asset's contract: here a stand-in with that key."""
    use_slack(monkeypatch, webhook.url)
    instance = dg.DagsterInstance.ephemeral()

    def materialize(flagged, as_of):
        @dg.asset(name="score_drift")
        def score_drift() -> dg.MaterializeResult:
            return dg.MaterializeResult(
                metadata={
                    "flagged_pools": dg.MetadataValue.json(flagged),
                    "as_of": as_of,
                    "drift_table": dg.MetadataValue.md(
                        "| pool | mean score | 30 days ago |\n|---|---:|---:|\n"
                        "| prospecting | 0.41 | 0.55 |"
                    ),
                }
            )

        assert dg.materialize([score_drift], instance=instance).success

    materialize(["prospecting"], "2026-10-26")
    materialize([], "2026-11-02")
    first = tick(alert_on_score_drift, instance)
    (text,) = webhook.texts()
    assert "Score drift: 1 pool(s) flagged for recalibration" in text
    assert "Pools to recalibrate: prospecting." in text
    assert "• pool prospecting, mean score 0.41, 30 days ago 0.55" in text
    materialize(["prospecting"], "2026-10-26")  # the same week's report again
    materialize(["prospecting", "testing"], "2026-11-09")
    tick(alert_on_score_drift, instance, first.cursor)
    assert len(webhook.posts) == 2 and "prospecting, testing" in webhook.texts()[1]


def test_a_broken_pools_file_still_lets_the_run_failure_out(tmp_path, webhook, monkeypatch):
    """The run that a bad pools file breaks is the one alert that must get out."""
    use_slack(monkeypatch, webhook.url)
    broken = tmp_path / "broken.yaml"
    broken.write_text("currency: EUR\npools: []\n")
    instance = dg.DagsterInstance.ephemeral()
    result = run_cycle(
        instance, tmp_path / "w.duckdb", KEYS[-1:], pools_path=broken, raise_on_error=False
    )
    assert not result.success
    tick(alert_on_run_failure, instance, pools_path=broken)
    (text,) = webhook.texts()
    assert "ConfigError" in text and "pools" in text


def test_the_alert_sensors_load_in_the_code_location_with_its_own_resources(
    tmp_path, webhook, monkeypatch
):
    from budget_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    names = {s.name for s in ALERT_SENSORS}
    assert names <= {s.name for s in defs.sensors}
    use_slack(monkeypatch, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, tmp_path / "w.duckdb", KEYS, pools_path=PAUSE_POOLS)
    sensor = defs.get_sensor_def("alert_on_plan_pause")
    context = dg.build_sensor_context(instance=instance, resources=dict(defs.resources))
    sensor(context)
    assert len(webhook.posts) == 1 and PAUSED in webhook.texts()[0]
