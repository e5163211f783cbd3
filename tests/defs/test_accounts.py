"""Two ad accounts of one accounts file on one Dagster instance, through the real machinery:
each its own code location (keys under its prefix, its pool, its partitions and timezone),
schedules ticked and their run requests executed per account, each account's checks and gate
judging its own plan and executing nothing of the other's."""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from accounts_helpers import ACCOUNT_IDS, K8S_CONFIG, write_accounts
from alerts.loopback import serve_webhook
from dagster_helpers import launch, tick_schedule, tick_sensor

from budget_pipeline import runner
from budget_pipeline.config.accounts import load_accounts
from budget_pipeline.config.alerts import SLACK_WEBHOOK_ENV
from budget_pipeline.defs.accounts import account_definitions
from budget_pipeline.defs.constants import ACCOUNT_TAG, PLAN_ID_TAG
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.execution.sensors import gate_request
from budget_pipeline.defs.run_health import PID_TAG, host_tags, reap_dead_runs
from budget_pipeline.defs.scope import resources_scope

BERLIN = ZoneInfo("Europe/Berlin")
K8S_TAG = "dagster-k8s/config"
DE, AT = ACCOUNT_IDS["shop_de"], ACCOUNT_IDS["shop_at"]


@pytest.fixture
def locations(tmp_path) -> dict[str, dg.Definitions]:
    accounts = load_accounts(write_accounts(tmp_path), env={})
    return {name: account_definitions(account) for name, account in accounts.items()}


def tick_with_resources(defs: dg.Definitions, instance, name: str, cursor=None):
    """A sensor tick as the daemon makes it: the location's resources, its repository."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=defs.get_repository_def(),
        resources=defs.resources,
    )
    return defs.resolve_sensor_def(name).evaluate_tick(context)


def _plan(result: dg.ExecuteInProcessResult, name: str) -> dict:
    (mat,) = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey([name, "rebalance_plan"])
    ]
    return {k: v.value for k, v in mat.materialization.metadata.items()}


def test_each_account_is_a_location_of_its_own(locations, tmp_path):
    de, at = locations["shop_de"], locations["shop_at"]
    keys = {n: d.resolve_asset_graph().get_all_asset_keys() for n, d in locations.items()}
    assert all(k.path[0] == "shop_de" for k in keys["shop_de"])
    assert all(k.path[0] == "shop_at" for k in keys["shop_at"])
    assert dg.AssetKey(["shop_at", "rebalance_plan"]) in keys["shop_at"]
    checks = at.resolve_asset_graph().asset_check_keys
    assert {c.asset_key for c in checks if c.name in {g.name for g in GUARDS}} == {
        dg.AssetKey(["shop_at", "rebalance_plan"])
    }
    # its own warehouse, pool, history and timezone
    assert de.resources["warehouse"].database == str(tmp_path / "data" / "shop_de.duckdb")
    pools = {a.op.pool for a in at.assets} | {c.op.pool for c in at.asset_checks}
    assert pools == {"duckdb_write.shop_at"}
    cycle = {n: d.resolve_job_def("budget_cycle_job") for n, d in locations.items()}
    assert cycle["shop_de"].partitions_def.get_first_partition_key() == "2026-09-01"
    assert cycle["shop_at"].partitions_def.get_first_partition_key() == "2026-09-08"
    # every run of every job carries its account
    for name, account_id in (("shop_de", DE), ("shop_at", AT)):
        for job in ("budget_cycle_job", "budget_execution_job", "monitoring_job"):
            assert locations[name].resolve_job_def(job).run_tags[ACCOUNT_TAG] == account_id
        rollback = locations[name].resolve_job_def("budget_rollback_job")
        assert rollback.run_tags[ACCOUNT_TAG] == account_id
        assert rollback.nodes[0].definition.pool == f"duckdb_write.{name}"
        assert resources_scope(locations[name].resources).account_id == account_id
    # the accounts file's run_tags (shop_at's warehouse volume on Kubernetes) on its runs only
    volume = json.dumps(K8S_CONFIG)
    for job in (
        "budget_cycle_job",
        "budget_execution_job",
        "monitoring_job",
        "budget_rollback_job",
    ):
        assert at.resolve_job_def(job).run_tags[K8S_TAG] == volume
        assert K8S_TAG not in de.resolve_job_def(job).run_tags


def test_two_accounts_on_one_instance_each_plan_check_and_execute_their_own(locations, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    de, at = locations["shop_de"], locations["shop_at"]
    # Each account's history but its last day, as one range run (a backfill from the UI).
    for defs in (de, at):
        history = runner.run_cycle(instance, runner.partition_keys(defs=defs)[:-1], defs=defs)
        assert history.success

    # One tick time, each account's own day: shop_de's history ended on Oct 30, shop_at's
    # runs to Nov 6.
    when = datetime(2026, 11, 7, 6, 0, tzinfo=BERLIN)
    cycles, plans = {}, {}
    for name, defs in locations.items():
        (request,) = tick_schedule(defs, instance, "daily_cycle_schedule", when).run_requests
        cycles[name] = launch(defs, instance, request, "budget_cycle_job")
        assert cycles[name].success
        assert cycles[name].dagster_run.tags[ACCOUNT_TAG] == {"shop_de": DE, "shop_at": AT}[name]
        plans[name] = _plan(cycles[name], name)
        assert plans[name]["account_id"] == resources_scope(defs.resources).account_id
    assert cycles["shop_de"].dagster_run.tags["dagster/partition"] == "2026-10-30"
    assert cycles["shop_at"].dagster_run.tags["dagster/partition"] == "2026-11-06"
    assert plans["shop_de"]["plan_id"] != plans["shop_at"]["plan_id"]
    assert plans["shop_de"]["moves"] > 0 and plans["shop_at"]["moves"] > 0

    # shop_at planned after shop_de: shop_de's checks still judge shop_de's plan.
    recheck = runner.run_plan_checks(instance, defs=de)
    evaluations = recheck.get_asset_check_evaluations()
    assert len(evaluations) == len(GUARDS)
    assert {e.metadata["plan_id"].value for e in evaluations} == {plans["shop_de"]["plan_id"]}

    # Each gate opens on its own plan, once; its run carries its account.
    executions, cursors = {}, {}
    for name, defs in locations.items():
        gate = tick_sensor(defs, instance, "execution_gate")
        cursors[name] = gate.cursor
        (request,) = gate.run_requests
        assert request.tags[PLAN_ID_TAG] == plans[name]["plan_id"]
        assert request.tags[ACCOUNT_TAG] == {"shop_de": DE, "shop_at": AT}[name]
        executions[name] = launch(defs, instance, request, "budget_execution_job")
        assert executions[name].success
        (done,) = [
            m
            for m in executions[name].get_asset_materialization_events()
            if m.asset_key == dg.AssetKey([name, "budget_execution"])
        ]
        meta = done.materialization.metadata
        assert meta["plan_id"].value == plans[name]["plan_id"]
        assert meta["observed"].value == plans[name]["moves"] + plans[name]["pauses"]
        again = tick_sensor(defs, instance, "execution_gate", cursor=gate.cursor)
        assert not again.run_requests

    # A later run of shop_at's plan died (its worker lost): shop_at's gate finishes the plan,
    # shop_de's gate (same job name, same instance) leaves it alone.
    at_plan = plans["shop_at"]["plan_id"]
    died = instance.create_run_for_job(
        at.resolve_job_def("budget_execution_job"),
        tags={ACCOUNT_TAG: AT, PLAN_ID_TAG: at_plan},
        run_config={"ops": {"budget_execution": {"config": {"plan_id": at_plan}}}},
    )
    instance.report_run_failed(died, "the run's worker was lost")
    de_tick = tick_sensor(de, instance, "execution_gate", cursor=cursors["shop_de"])
    assert not de_tick.run_requests and at_plan not in de_tick.skip_message
    at_tick = tick_sensor(at, instance, "execution_gate", cursor=cursors["shop_at"])
    assert f"plan {at_plan}: unfinished after 2 run(s); retried in" in at_tick.skip_message
    later = time.time() + 3600  # past the backoff
    scopes = {n: resources_scope(d.resources) for n, d in locations.items()}
    de_later = gate_request(instance, cursors["shop_de"], now=later, scope=scopes["shop_de"])
    assert isinstance(de_later, dg.SkipReason), de_later
    finish = gate_request(instance, cursors["shop_at"], now=later, scope=scopes["shop_at"])
    assert [r.run_key for r in finish.run_requests] == [f"{at_plan}#finish-2"]
    assert finish.run_requests[0].tags[ACCOUNT_TAG] == AT

    # Neither account executes the other's plan, whoever asks.
    foreign = de.resolve_job_def("budget_execution_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"budget_execution": {"config": {"plan_id": plans["shop_at"]["plan_id"]}}}},
        raise_on_error=False,
    )  # fmt: skip
    assert not foreign.success
    (failure,) = foreign.get_step_failure_events()
    assert "refused" in failure.step_failure_data.error.cause.message
    # ...nor rolls it back: the plan is not in its warehouse
    rollback = de.resolve_job_def("budget_rollback_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"roll_back_plan_op": {"config": {"plan_id": plans["shop_at"]["plan_id"]}}}},
        raise_on_error=False,
    )  # fmt: skip
    assert not rollback.success
    (failure,) = rollback.get_step_failure_events()
    assert "no such plan" in failure.step_failure_data.error.cause.message


def test_alerts_and_the_reaper_see_their_own_accounts_runs_only(locations, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    de, at = locations["shop_de"], locations["shop_at"]
    with serve_webhook() as hook:
        monkeypatch.setenv(SLACK_WEBHOOK_ENV, hook.url)
        first = {
            n: tick_with_resources(d, instance, "alert_on_run_failure")
            for n, d in locations.items()
        }
        # shop_at's execution of a plan it does not have fails: only shop_at hears of it.
        failed = at.resolve_job_def("budget_execution_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"budget_execution": {"config": {"plan_id": "plan-nowhere"}}}},
            raise_on_error=False,
        )
        assert not failed.success and failed.dagster_run.tags[ACCOUNT_TAG] == AT
        ticks = {
            n: tick_with_resources(d, instance, "alert_on_run_failure", first[n].cursor)
            for n, d in locations.items()
        }
        (text,) = hook.texts()
        assert failed.run_id in text and "plan-nowhere" in text
        assert "1 new run_failed alert(s)" in ticks["shop_at"].skip_message
        assert "0 new run_failed alert(s)" in ticks["shop_de"].skip_message

    # A dead run of shop_de is reaped by shop_de's reaper, never by shop_at's.
    dead = instance.create_run_for_job(
        de.resolve_job_def("budget_cycle_job"),
        tags={**host_tags(), PID_TAG: "999999999", ACCOUNT_TAG: DE},
    )
    assert reap_dead_runs(instance, resources_scope(at.resources)) == []
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    tick_sensor(de, instance, "dead_run_reaper")
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
