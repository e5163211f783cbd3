"""Rolling an executed plan back, over real HTTP to the Graph API double on loopback.

A live cycle moves the testing pool's budgets on the double; ``budget_rollback_job`` (as the
UI launches it, with the plan id in its run config) sets them back through the executor's
guards, ledger and read-back-before-write. The invariant: every budget the plan moved is back
at its before-value exactly once, unless someone else changed it since (then it is skipped,
reported, and left alone).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_helpers import ALL_KEYS
from live_helpers import (
    LIVE_POOLS,
    TOKEN,
    budget_posts,
    budgets_at,
    live_cycle,
    live_pools_data,
    live_resources,
    stored_plans,
)
from meta_double_helpers import FAST_RETRY

from budget_pipeline import runner
from budget_pipeline.config.pools import load_pools
from budget_pipeline.contracts import AD_ENTITIES, PLAN, conform
from budget_pipeline.definitions import build_defs
from budget_pipeline.defs.constants import OUTCOME_TAG, ROLLBACK_TAG
from budget_pipeline.defs.execution.sensors import gate_request
from budget_pipeline.defs.rollback.job import rollback_run_config
from budget_pipeline.engine.rollback import RollbackRefusedError, roll_back_plan
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.meta_api import MetaApiSource
from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

KEYS = ALL_KEYS[-35:]


class Crash(BaseException):
    """The process dying mid-rollback (not an Exception: nothing may catch it)."""


@pytest.fixture
def double(monkeypatch):
    account = SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))
    with serve_double(account, token=TOKEN) as handle:
        for key, value in handle.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("META_ASYNC_POLL_SECONDS", "0.05")
        yield handle


def _executed(double, instance, db_path, pools_path: Path = LIVE_POOLS) -> tuple[str, pl.DataFrame]:
    """A live cycle and its execution through the gate: (plan id, the testing pool's moves)."""
    live_cycle(instance, db_path, KEYS, pools_path)
    (request,) = gate_request(instance, None).run_requests
    run = runner.run_execution(
        instance,
        resources=live_resources(db_path, pools_path),
        run_config=request.run_config,
        tags=request.tags,
    )
    assert run.success
    plan_id = request.run_config["ops"]["budget_execution"]["config"]["plan_id"]
    plan = stored_plans(db_path).filter(pl.col("plan_id") == plan_id)
    moves = plan.filter(pl.col("pool") == "testing", pl.col("delta") != 0)
    assert moves.height >= 2, "the default account should move the testing pool"
    now = budgets_at(double)
    assert [now[e] for e in moves["entity_id"]] == moves["new_budget"].to_list()
    return plan_id, moves


def _rollback(instance, db_path, plan_id, pools_path: Path = LIVE_POOLS):
    job = build_defs(live_resources(db_path, pools_path)).resolve_job_def("budget_rollback_job")
    return job.execute_in_process(
        instance=instance, run_config=rollback_run_config(plan_id), raise_on_error=False
    )


def _meta(result) -> dict:
    (mat,) = result.asset_materializations_for_node("roll_back_plan_op")
    assert mat.asset_key == dg.AssetKey("action_log")
    return {k: v.value for k, v in mat.metadata.items()}


def _ledger(db_path, plan_id) -> dict[str, str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT entity_id, state FROM execution_ledger WHERE plan_id = ? AND step = 'budget'",
            [plan_id],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def _rollback_posts(double, moves: pl.DataFrame) -> list[tuple[str, str]]:
    """POSTs that set a moved entity back to its before-value."""
    before = {e: str(b) for e, b in moves.select("entity_id", "old_budget").iter_rows()}
    return sorted(p for p in budget_posts(double) if before.get(p[0]) == p[1])


def test_the_job_sets_every_applied_move_back_once_and_a_rerun_sends_nothing(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "rollback.duckdb"
    plan_id, moves = _executed(double, instance, db_path)

    first = _rollback(instance, db_path, plan_id)
    assert first.success
    now = budgets_at(double)
    assert [now[e] for e in moves["entity_id"]] == moves["old_budget"].to_list()
    assert _rollback_posts(double, moves) == sorted(
        (e, str(b)) for e, b in moves.select("entity_id", "old_budget").iter_rows()
    )
    meta = _meta(first)
    assert (meta["rollback"], meta["rolled_back"], meta["skipped"]) == (
        "rolled_back",
        moves.height,
        0,
    )
    assert "UGC hook A" in meta["entries"] or any(  # names and money in the action log
        n in meta["entries"] for n in ("reels 9:16", "broad 55+")
    )
    assert " EUR" in meta["entries"]
    live_states = {s for s in _ledger(db_path, plan_id).values() if s != "observed"}
    assert live_states == {"rolled_back"}  # the observe pools' steps were only ever observed
    tags = instance.get_run_by_id(first.run_id).tags
    assert tags[ROLLBACK_TAG] == plan_id and tags[OUTCOME_TAG] == "rollback_rolled_back"

    posts = len(budget_posts(double))
    again = _rollback(instance, db_path, plan_id)
    assert again.success and _meta(again)["rollback"] == "nothing"
    assert _meta(again)["already_rolled_back"] == moves.height
    assert len(budget_posts(double)) == posts  # nothing sent twice
    # the execution gate does not take the rollback for an unfinished execution
    assert not (gate_request(instance, None).run_requests or [])


def test_a_budget_changed_since_by_someone_else_is_skipped_and_reported(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "changed.duckdb"
    plan_id, moves = _executed(double, instance, db_path)
    victim = moves.filter(pl.col("delta") > 0).row(0, named=True)
    double.account.apply_budget_change(victim["entity_id"], daily_budget=4_242)  # a human did

    result = _rollback(instance, db_path, plan_id)
    assert result.success
    now = budgets_at(double)
    assert now[victim["entity_id"]] == 4_242  # never forced back
    others = moves.filter(pl.col("entity_id") != victim["entity_id"])
    assert [now[e] for e in others["entity_id"]] == others["old_budget"].to_list()
    meta = _meta(result)
    assert (meta["rollback"], meta["skipped"], meta["rolled_back"]) == ("partly", 1, others.height)
    assert "moved since by someone else (found 42.42 EUR" in meta["entries"]
    assert _ledger(db_path, plan_id)[victim["entity_id"]] == "rollback_skipped"


def test_a_crash_mid_rollback_then_a_rerun_sets_each_budget_back_exactly_once(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "crash.duckdb"
    plan_id, moves = _executed(double, instance, db_path)
    config = load_pools(LIVE_POOLS)
    source = MetaApiSource.from_env(poll_interval=0.05, retry=FAST_RETRY)
    real_write, writes = source.write_budget, []

    def crash_after_second_write(entity_id, **budget):
        real_write(entity_id, **budget)  # the call lands on the API ...
        writes.append(entity_id)
        if len(writes) == 2:
            raise Crash("killed before the ledger recorded the second write")  # ... then death

    source.write_budget = crash_after_second_write
    con = duckdb.connect(str(db_path))
    try:
        plan = conform(
            con.sql("SELECT * FROM rebalance_plans WHERE plan_id = ?", params=[plan_id]).pl(), PLAN
        )
        entities = conform(con.sql("SELECT * FROM ad_entities").pl(), AD_ENTITIES)
        with pytest.raises(Crash):
            roll_back_plan(
                con, plan, config, source=source, run_id="dies", min_budget=100, entities=entities
            )
        states = _ledger_on(con, plan_id)
    finally:
        con.close()
    assert sorted(states.values()).count("rolled_back") == 1  # the second write went unrecorded
    assert len(_rollback_posts(double, moves)) == 2

    rerun = _rollback(instance, db_path, plan_id)  # the operator runs it again, from the job
    assert rerun.success
    now = budgets_at(double)
    assert [now[e] for e in moves["entity_id"]] == moves["old_budget"].to_list()
    # each budget reached its before-value by exactly one call
    assert _rollback_posts(double, moves) == sorted(
        (e, str(b)) for e, b in moves.select("entity_id", "old_budget").iter_rows()
    )
    meta = _meta(rerun)
    assert meta["already_rolled_back"] == 1
    assert meta["rolled_back"] == moves.height - 1  # one confirmed by reading back, no call
    assert "already back at" in meta["entries"]


def _ledger_on(con, plan_id) -> dict[str, str]:
    rows = con.execute(
        "SELECT entity_id, state FROM execution_ledger WHERE plan_id = ? AND step = 'budget'",
        [plan_id],
    ).fetchall()
    return dict(rows)


def test_the_kill_switch_refuses_a_rollback_with_nothing_sent(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "killed.duckdb"
    plan_id, moves = _executed(double, instance, db_path)
    data = live_pools_data()
    data["settings"]["kill_switch"] = True
    killed = tmp_path / "pools_killed.yaml"
    killed.write_text(yaml.safe_dump(data))

    posts = len(budget_posts(double))
    result = _rollback(instance, db_path, plan_id, pools_path=killed)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "kill switch on" in str(failure.step_failure_data.error.cause.message)
    assert len(budget_posts(double)) == posts
    now = budgets_at(double)
    assert [now[e] for e in moves["entity_id"]] == moves["new_budget"].to_list()
    assert {s for s in _ledger(db_path, plan_id).values() if s != "observed"} == {"applied"}


def test_an_observed_plan_has_nothing_to_roll_back_and_an_unknown_id_is_named(tmp_path):
    from dagster_helpers import resources, run_cycle

    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "observed.duckdb"
    cycle = run_cycle(instance, db_path, KEYS[-3:])
    plan_id = cycle.asset_materializations_for_node("rebalance_plan")[-1].metadata["plan_id"].value
    assert runner.run_execution(instance, resources=resources(db_path)).success  # observe mode
    job = build_defs(resources(db_path)).resolve_job_def("budget_rollback_job")

    observed = job.execute_in_process(
        instance=instance, run_config=rollback_run_config(plan_id), raise_on_error=False
    )
    assert observed.success and _meta(observed)["rollback"] == "nothing"
    assert "observe mode" in _meta(observed)["entries"]

    unknown = job.execute_in_process(
        instance=instance, run_config=rollback_run_config("plan-nope"), raise_on_error=False
    )
    assert not unknown.success
    (failure,) = unknown.get_step_failure_events()
    error = failure.step_failure_data.error.cause
    assert error.cls_name == "UnknownPlanError"
    assert "plan_id 'plan-nope'" in error.message and plan_id in error.message


def test_roll_back_plan_raises_refused_for_a_locked_entity(double, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "locked.duckdb"
    plan_id, moves = _executed(double, instance, db_path)
    data = live_pools_data()
    locked_id = moves["entity_id"][0]
    next(p for p in data["pools"] if p["name"] == "testing")["locked"] = [locked_id]
    config = load_pools(_write(tmp_path / "locked.yaml", data))
    con = duckdb.connect(str(db_path))
    try:
        plan = conform(
            con.sql("SELECT * FROM rebalance_plans WHERE plan_id = ?", params=[plan_id]).pl(), PLAN
        )
        with pytest.raises(RollbackRefusedError, match=f"locked: {locked_id}"):
            roll_back_plan(
                con, plan, config, source=MetaApiSource.from_env(), run_id="r", min_budget=100
            )
    finally:
        con.close()
    now = budgets_at(double)
    assert [now[e] for e in moves["entity_id"]] == moves["new_budget"].to_list()


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
