"""Sequences of faults against live execution, over real HTTP to the Graph API double.

The invariant that matters is money: after any sequence of crashes, failures and reruns every
live pool's total of budgets equals the plan's, or the plan is rolled back to its before-values.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_helpers import ALL_KEYS
from live_helpers import (
    LIVE_POOLS,
    TOKEN,
    assert_plan_complete_or_rolled_back,
    budget_posts,
    live_cycle,
    live_resources,
    stored_plans,
)
from meta_double_helpers import FAST_RETRY

from budget_pipeline import runner
from budget_pipeline.config.pools import load_pools
from budget_pipeline.defs.constants import OUTCOME_TAG, PLAN_ID_TAG
from budget_pipeline.defs.execution.sensors import gate_request
from budget_pipeline.engine.execution import execute_plan, execution_steps
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.meta_api import MetaApiSource
from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

KEYS = ALL_KEYS[-35:]


@pytest.fixture
def double(monkeypatch):
    account = SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))
    with serve_double(account, token=TOKEN) as handle:
        for key, value in handle.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("META_ASYNC_POLL_SECONDS", "0.05")
        yield handle


def _live_steps(db_path) -> pl.DataFrame:
    plan = stored_plans(db_path)
    return execution_steps(plan, load_pools(LIVE_POOLS)).filter(pl.col("mode") == "live")


def _source() -> MetaApiSource:
    return MetaApiSource.from_env(poll_interval=0.05, retry=FAST_RETRY)  # the double is quick


def _execute(db_path, steps, run_id):
    con = duckdb.connect(str(db_path))
    try:
        return execute_plan(con, steps, source=_source(), run_id=run_id)
    finally:
        con.close()


def _ledger(db_path) -> dict[str, str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return dict(con.execute("SELECT entity_id, state FROM execution_ledger").fetchall())
    finally:
        con.close()


def test_a_reply_lost_every_time_is_confirmed_by_reading_back_never_re_sent(double, tmp_path):
    db_path = tmp_path / "lost.duckdb"
    live_cycle(dg.DagsterInstance.ephemeral(), db_path, KEYS)
    steps = _live_steps(db_path)
    recipient = steps.filter(pl.col("after_budget") > pl.col("before_budget")).row(0, named=True)
    double.faults.push(
        {"match": f"POST /v25.0/{recipient['entity_id']}", "lose_reply": True, "times": 50}
    )
    result = _execute(db_path, steps, "run-1")
    assert result.outcome == "complete"
    # the write landed once; every retry read the budget back first and found it there
    assert budget_posts(double, recipient["entity_id"]) == [
        (recipient["entity_id"], str(recipient["after_budget"]))
    ]
    assert not any(r.get("status") == 400 for r in double.requests)  # no 613 edit limit
    assert assert_plan_complete_or_rolled_back(double, stored_plans(db_path)) == "complete"


def test_a_recipient_that_fails_on_every_retry_rolls_the_plan_back(double, tmp_path):
    db_path = tmp_path / "always_fails.duckdb"
    live_cycle(dg.DagsterInstance.ephemeral(), db_path, KEYS)
    steps = _live_steps(db_path)
    donors = steps.filter(pl.col("after_budget") < pl.col("before_budget"))
    recipient = steps.filter(pl.col("after_budget") > pl.col("before_budget")).row(0, named=True)
    assert donors.height >= 1
    double.faults.push(
        {"match": f"POST /v25.0/{recipient['entity_id']}", "status": 500, "times": 1000}
    )
    outcomes = [_execute(db_path, steps, f"run-{n}").outcome for n in (1, 2, 3)]
    # two passes leave it for a later run (the gate relaunches), the third gives up: rollback
    assert outcomes == ["incomplete", "incomplete", "rolled_back"]
    assert assert_plan_complete_or_rolled_back(double, stored_plans(db_path)) == "rolled_back"
    states = _ledger(db_path)
    assert {states[d] for d in donors["entity_id"]} == {"rolled_back"}
    assert states[recipient["entity_id"]] == "abandoned"
    # a later pass changes nothing: the plan is settled
    assert _execute(db_path, steps, "run-4").outcome == "rolled_back"
    assert assert_plan_complete_or_rolled_back(double, stored_plans(db_path)) == "rolled_back"


def test_a_budget_moved_by_someone_else_mid_plan_rolls_the_plan_back(double, tmp_path):
    db_path = tmp_path / "moved.duckdb"
    live_cycle(dg.DagsterInstance.ephemeral(), db_path, KEYS)
    steps = _live_steps(db_path)
    victim = steps.filter(pl.col("after_budget") > pl.col("before_budget")).row(0, named=True)
    double.account.apply_budget_change(victim["entity_id"], daily_budget=4_242)  # a human did
    result = _execute(db_path, steps, "run-1")
    assert result.outcome == "rolled_back"
    now = dict(double.account.entities().select("entity_id", "daily_budget").iter_rows())
    assert now[victim["entity_id"]] == 4_242  # never forced back
    others = stored_plans(db_path).filter(
        pl.col("pool") == "testing", pl.col("entity_id") != victim["entity_id"]
    )
    assert [now[e] for e in others["entity_id"]] == others["old_budget"].to_list()


def _execution_runs(instance, plan_id):
    return instance.get_run_records(dg.RunsFilter(tags={PLAN_ID_TAG: plan_id}))


def _launch(instance, db_path, request):
    return runner.run_execution(
        instance,
        resources=live_resources(db_path),
        run_config=request.run_config,
        tags=request.tags,
    )


def test_a_failed_run_is_finished_by_the_next_gate_tick_without_an_operator(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "finish.duckdb"
    live_cycle(instance, db_path, KEYS)
    steps = _live_steps(db_path)
    recipient = steps.filter(pl.col("after_budget") > pl.col("before_budget")).row(0, named=True)
    double.faults.push(
        {"match": f"POST /v25.0/{recipient['entity_id']}", "status": 400, "code": 100,
         "message": "Invalid parameter"}
    )  # fmt: skip
    (first,) = gate_request(instance, None).run_requests
    run = _launch(instance, db_path, first)
    assert not run.success  # a partly applied plan fails its run ...
    plan_id = first.tags[PLAN_ID_TAG]
    assert instance.get_run_by_id(run.run_id).tags[OUTCOME_TAG] == "incomplete"

    # ... then a cycle fails (the token was revoked): no new plan, the checks it planned
    # never ran. The gate must still finish the started plan.
    double.double._token = "revoked"
    failed_cycle = runner.run_cycle(instance, KEYS[-1:], resources=live_resources(db_path))
    assert not failed_cycle.success
    double.double._token = TOKEN

    tick = gate_request(instance, None)
    (finish,) = tick.run_requests
    assert finish.tags[PLAN_ID_TAG] == plan_id and finish.run_key == f"{plan_id}#finish-1"
    assert _launch(instance, db_path, finish).success
    assert assert_plan_complete_or_rolled_back(double, stored_plans(db_path)) == "complete"
    assert (
        budget_posts(double, recipient["entity_id"])
        == [(recipient["entity_id"], str(recipient["after_budget"]))] * 2
    )  # refused once, then sent again (after reading the budget back)
    assert not (gate_request(instance, None).run_requests or [])  # settled: nothing more
    assert len(_execution_runs(instance, plan_id)) == 2


def test_a_new_cycle_holds_the_pools_of_a_plan_still_being_finished(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "hold.duckdb"
    live_cycle(instance, db_path, KEYS)
    steps = _live_steps(db_path)
    recipient = steps.filter(pl.col("after_budget") > pl.col("before_budget")).row(0, named=True)
    double.faults.push(
        {"match": f"POST /v25.0/{recipient['entity_id']}", "status": 400, "code": 100,
         "message": "Invalid parameter"}
    )  # fmt: skip
    (first,) = gate_request(instance, None).run_requests
    assert not _launch(instance, db_path, first).success
    first_plan = first.tags[PLAN_ID_TAG]

    # A cycle now: the account's budgets are half-moved. The testing pool must not be planned
    # from that state; the plan lists the unfinished plan for the gate.
    cycle = live_cycle(instance, db_path, KEYS)
    meta = cycle.asset_materializations_for_node("rebalance_plan")[-1].metadata
    assert meta["unfinished_plans"].value == [first_plan]
    plans = stored_plans(db_path)
    newest = plans.filter(pl.col("plan_id") == meta["plan_id"].value, pl.col("pool") == "testing")
    assert (newest["delta"] == 0).all()
    assert all(first_plan in r for r in newest["reason"].to_list())

    tick = gate_request(instance, None)
    assert tick.run_requests[0].tags[PLAN_ID_TAG] == first_plan
    for request in tick.run_requests:
        assert _launch(instance, db_path, request).success
    first_rows = plans.filter(pl.col("plan_id") == first_plan)
    assert assert_plan_complete_or_rolled_back(double, first_rows) == "complete"


EXPIRED = {"status": 400, "code": 190, "message": "Error validating access token"}


def test_a_call_in_doubt_stays_started_until_a_read_back_settles_it(double, tmp_path):
    """A recipient's write lands but its reply is lost and the read-back fails (token expired):
    its outcome is unknown. It must stay 'started' (never 'failed', 'deferred' or 'abandoned'
    blindly) across a pass whose reads fail again, count as spent meanwhile, and be confirmed
    (not sent twice) once it can be read."""
    db_path = tmp_path / "doubt.duckdb"
    live_cycle(dg.DagsterInstance.ephemeral(), db_path, KEYS)
    steps = _live_steps(db_path)
    ups = steps.filter(pl.col("after_budget") > pl.col("before_budget")).sort("entity_id")
    assert ups.height >= 2
    doubt = ups.row(0, named=True)
    get = f"GET /v25.0/{doubt['entity_id']}?"
    double.faults.push(
        {"match": get, "delay": 0.0},  # the read before the write
        {"match": f"POST /v25.0/{doubt['entity_id']}", "lose_reply": True},  # lands
        {"match": get, **EXPIRED},  # the client's read-back after the lost reply
    )
    assert _execute(db_path, steps, "run-1").outcome == "incomplete"
    assert _ledger(db_path)[doubt["entity_id"]] == "started"

    double.faults.push({"match": get, **EXPIRED}, {"match": get, **EXPIRED})  # still expired
    assert _execute(db_path, steps, "run-2").outcome == "incomplete"
    assert _ledger(db_path)[doubt["entity_id"]] == "started"
    # meanwhile the pool never holds more than the plan's total (the call in doubt counts)
    plan = stored_plans(db_path).filter(pl.col("pool") == "testing")
    now = dict(double.account.entities().select("entity_id", "daily_budget").iter_rows())
    assert sum(now[e] for e in plan["entity_id"]) <= int(plan["new_budget"].sum())

    result = _execute(db_path, steps, "run-3")  # renewed
    assert result.outcome == "complete"
    assert assert_plan_complete_or_rolled_back(double, stored_plans(db_path)) == "complete"
    assert budget_posts(double, doubt["entity_id"]) == [
        (doubt["entity_id"], str(doubt["after_budget"]))
    ]  # sent once, confirmed by reading back
    logged = result.log.filter(pl.col("entity_id") == doubt["entity_id"])
    assert logged["status"].to_list() == ["applied"]
    assert logged["message"][0].startswith("confirmed after restart")
