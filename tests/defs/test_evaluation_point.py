"""Decisions only at a new evaluation point: an intraday tick with new hours but no new point
keeps the baselines, scores and plan (same plan id, nothing recomputed); a new point, an edited
pools file or a budget changed on the account compute afresh. Through the real Dagster
machinery, on a copy of the default account whose clock stops one day before its last
partition (so that day's hours arrive tick by tick)."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_helpers import ALL_KEYS, advance, run_cycle, short_clock_account

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.defs.evaluation_point import evaluation_point, fingerprint
from budget_pipeline.sources.accounts import open_simulated

DECIDING = ("entity_baselines", "composite_scores", "rebalance_plan")
NODES = (*DECIDING, "trigger_states")


@pytest.fixture()
def account(tmp_path):
    return short_clock_account(tmp_path)  # the clock stops a day before the last partition


def _cycle(instance, db_path, scenario, keys, pools=DEFAULT_POOLS_PATH):
    result = run_cycle(instance, db_path, keys, scenario_path=scenario, pools_path=pools)
    return {node: result.asset_materializations_for_node(node)[-1].metadata for node in NODES} | {
        "checks": result.get_asset_check_evaluations()
    }


def _one(db_path, sql: str):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _plans(db_path) -> int:
    return _one(db_path, "SELECT count(DISTINCT plan_id) FROM rebalance_plans")


def _newest_hour(db_path) -> datetime:
    return _one(db_path, "SELECT max(ts) FROM insights")


def _recomputed(meta) -> list[bool]:
    return [meta[node]["recomputed"].value for node in DECIDING]


def test_an_intraday_tick_keeps_the_decisions_until_the_next_evaluation_point(account):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    first = _cycle(instance, db_path, scenario, ALL_KEYS[-36:])
    assert _recomputed(first) == [True, True, True]
    plan_id = first["rebalance_plan"]["plan_id"].value
    assert first["rebalance_plan"]["moves"].value > 0

    before = _newest_hour(db_path)
    advance(db_path, scenario, 3)  # three new hours, still the same day: no new point
    tick = _cycle(instance, db_path, scenario, ALL_KEYS[-1:])
    assert (_newest_hour(db_path) - before).total_seconds() == 3 * 3600  # they landed
    assert _recomputed(tick) == [False, False, False]
    assert tick["composite_scores"]["evaluation_points"].value == 0
    assert tick["trigger_states"]["new_intervals"].value == 0
    assert tick["rebalance_plan"]["plan_id"].value == plan_id
    assert tick["rebalance_plan"]["moves"].value == first["rebalance_plan"]["moves"].value
    assert tick["entity_baselines"]["as_of"].value == first["entity_baselines"]["as_of"].value
    assert len(tick["checks"]) == 9 and all(c.passed for c in tick["checks"])
    assert _plans(db_path) == 1

    advance(db_path, scenario, 21)  # midnight: the next evaluation point
    nxt = _cycle(instance, db_path, scenario, ALL_KEYS[-1:])
    assert _recomputed(nxt) == [True, True, True]
    assert nxt["composite_scores"]["evaluation_points"].value == 1
    assert nxt["rebalance_plan"]["plan_id"].value != plan_id
    assert _plans(db_path) == 2


def test_an_edited_pools_file_or_a_budget_changed_by_hand_is_decided_again(account, tmp_path):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    first = _cycle(instance, db_path, scenario, ALL_KEYS[-36:])
    plan_id = first["rebalance_plan"]["plan_id"].value

    pools = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    pools["pools"][0]["weights"] = {"roas": 0.7, "cpa": 0.1, "frequency": 0.1, "engagement": 0.1}
    edited = tmp_path / "pools.yaml"
    edited.write_text(yaml.safe_dump(pools, sort_keys=False))
    advance(db_path, scenario, 1)
    after_edit = _cycle(instance, db_path, scenario, ALL_KEYS[-1:], pools=edited)
    # the baselines read no weights; the scores and the plan do
    assert _recomputed(after_edit) == [False, True, True]
    # the points of the last advance, scored again (the triggers evaluate them again)
    scored = first["composite_scores"]["evaluation_points"].value
    assert after_edit["composite_scores"]["evaluation_points"].value == scored
    assert after_edit["trigger_states"]["new_intervals"].value == scored

    con = duckdb.connect(str(db_path))
    try:  # a budget changed on the account by hand, at the same evaluation point
        source = open_simulated(con, scenario)
        holder = next(
            row
            for row in source.entities().iter_rows(named=True)
            if row["budget_type"] == "daily" and row["daily_budget"]
        )
        source.write_budget(holder["entity_id"], daily_budget=holder["daily_budget"] + 1_000)
    finally:
        con.close()
    by_hand = _cycle(instance, db_path, scenario, ALL_KEYS[-1:], pools=edited)
    assert _recomputed(by_hand) == [False, False, True]
    replanned = by_hand["rebalance_plan"]["plan_id"].value
    assert replanned not in (plan_id, after_edit["rebalance_plan"]["plan_id"].value)

    again = _cycle(instance, db_path, scenario, ALL_KEYS[-1:], pools=edited)
    assert _recomputed(again) == [False, False, False]
    assert again["rebalance_plan"]["plan_id"].value == replanned


def test_the_evaluation_point_is_the_newest_interval_boundary():
    assert evaluation_point(datetime(2026, 10, 31, 9), 24) == datetime(2026, 10, 31)
    assert evaluation_point(datetime(2026, 10, 31), 24) == datetime(2026, 10, 31)
    assert evaluation_point(datetime(2026, 10, 31, 9), 4) == datetime(2026, 10, 31, 8)
    assert evaluation_point(datetime(2026, 10, 31, 9), 1) == datetime(2026, 10, 31, 9)


def test_a_fingerprint_ignores_row_order_and_sees_any_change_of_a_value():
    frame = pl.DataFrame(
        {"id": ["a", "b", "c"], "budget": [100, 200, None], "pools": [["x"], [], ["y", "z"]]}
    )
    same = fingerprint({"k": 1}, frame)
    assert fingerprint({"k": 1}, frame.reverse()) == same
    assert fingerprint({"k": 2}, frame) != same
    assert fingerprint({"k": 1}, frame.with_columns(budget=pl.lit(100))) != same
    assert fingerprint({"k": 1}, frame.with_columns(pools=pl.lit(["x"]))) != same
    assert fingerprint({"k": 1}, frame.head(2)) != same


def test_a_new_build_of_the_engine_decides_again_at_the_same_point(account, monkeypatch):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    _cycle(instance, db_path, scenario, ALL_KEYS[-36:])
    advance(db_path, scenario, 1)
    assert _recomputed(_cycle(instance, db_path, scenario, ALL_KEYS[-1:])) == [False] * 3
    # a fix deployed between two points (another engine or SQL): no decision is kept
    monkeypatch.setattr(
        "budget_pipeline.defs.evaluation_point.code_version", lambda: "the next build"
    )
    advance(db_path, scenario, 1)
    assert _recomputed(_cycle(instance, db_path, scenario, ALL_KEYS[-1:])) == [True] * 3
