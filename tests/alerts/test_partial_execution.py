"""A live execution that the Graph API double partly refuses: one alert, with the failed step
in money, and the run's failure not told a second time."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from alerts.sensor_helpers import state, tick

from budget_pipeline import runner
from budget_pipeline.config.alerts import SLACK_WEBHOOK_ENV
from budget_pipeline.defs.alerts.sensors import alert_on_partial_execution, alert_on_run_failure
from budget_pipeline.defs.execution.sensors import execution_gate
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.money import format_money
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

LIVE_POOLS = Path(__file__).resolve().parents[1] / "fixtures/pools_live_rule.yaml"
KEYS = runner.partition_keys()[-35:]


@pytest.fixture
def double(monkeypatch):
    account = SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))
    with serve_double(account, token="double-token-for-alerts") as handle:
        for key, value in handle.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("META_ASYNC_POLL_SECONDS", "0.05")
        yield handle


def _resources(db_path: Path) -> dict:
    return {
        "warehouse": Warehouse(database=str(db_path)),
        "pools": PoolsResource(path=str(LIVE_POOLS)),
        "account": AdAccount(scenario_path=str(DEFAULT_SCENARIO_PATH)),
    }


def test_a_refused_budget_write_alerts_once_with_the_step_in_money(
    double, tmp_path, webhook, monkeypatch
):
    monkeypatch.setenv(SLACK_WEBHOOK_ENV, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "live.duckdb"
    assert runner.run_cycle(instance, KEYS, resources=_resources(db_path)).success
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        entity, old, new, name = con.execute(
            "SELECT p.entity_id, old_budget, new_budget, e.name FROM rebalance_plans AS p "
            "JOIN ad_entities AS e USING (entity_id) "
            "WHERE p.pool = 'testing' AND delta > 0 ORDER BY entity_id LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    double.faults.push(
        {
            "match": f"POST /v25.0/{entity}",
            "status": 400,
            "code": 100,
            "message": "Invalid parameter",
        }
    )
    request = execution_gate(dg.build_sensor_context(instance=instance)).run_requests[0]
    plan_id = request.tags["budget_pipeline/plan_id"]
    run = runner.run_execution(
        instance, resources=_resources(db_path), run_config=request.run_config, tags=request.tags
    )
    assert not run.success  # the asset logs the failed step, then fails the run

    first = tick(alert_on_partial_execution, instance, pools_path=LIVE_POOLS)
    (text,) = webhook.texts()
    assert text.startswith(f"*Plan {plan_id} partly applied: 1 failed*")
    # named as the action_log's entries name it: "UGC hook A (120210000010001)"
    line = next(line for line in text.splitlines() if line.startswith(f"• {name} ({entity})"))
    money = f"budget {format_money(old, 'EUR')} → {format_money(new, 'EUR')}: failed — "
    assert line.startswith(f"• {name} ({entity}) (pool testing) {money}")
    assert "Invalid parameter" in line
    assert f"/runs/{run.run_id}|" in text
    tick(alert_on_partial_execution, instance, first.cursor, pools_path=LIVE_POOLS)
    failure = tick(alert_on_run_failure, instance, pools_path=LIVE_POOLS)
    assert len(webhook.posts) == 1  # the same news: not told again as a failed run
    assert state(failure)["after"] is not None
