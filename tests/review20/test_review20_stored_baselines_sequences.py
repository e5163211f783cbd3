"""Review 20: sequences at one evaluation point where what the scores would compute changes
(settings edited, ad sets renamed / removed / re-pooled, a campaign turned CBO): each time the
scores composite_scores stores must be those computed afresh from the warehouse as it is.
Real Dagster cycles on a real DuckDB file; the account is edited in the warehouse the way an
ad_entities pull would leave it."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_helpers import (
    ALL_KEYS,
    advance,
    newest_scores_vs_fresh,
    resources,
    run_cycle,
    short_clock_account,
)
from polars.testing import assert_frame_equal

from budget_pipeline import db
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.definitions import defs
from budget_pipeline.defs.decisions.assets import _score_inputs


@pytest.fixture()
def account(tmp_path):
    return short_clock_account(tmp_path)  # the clock stops a day before the last partition


def _pools(tmp_path, name, **settings):
    pools = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    pools["settings"].update(settings)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(pools, sort_keys=False))
    return path


def _meta(result, node):
    return result.asset_materializations_for_node(node)[-1].metadata


def _assert_scores_fresh(db_path, pools_path):
    config = load_pools(pools_path)
    got, want, _, baselines = newest_scores_vs_fresh(db_path, config)
    assert_frame_equal(got.sort("entity_id"), want.sort("entity_id"), check_exact=True)
    # and what _score_inputs reads now equals a fresh computation
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        as_of = con.execute("SELECT max(as_of) FROM composite_scores").fetchall()[0][0]
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        _read_windows, read_baselines, _ = _score_inputs(con, [as_of], config, entities)
        assert_frame_equal(read_baselines, baselines, check_exact=True)
    finally:
        con.close()


@pytest.mark.parametrize(
    "settings", [{"lookback_hours": 48}, {"baseline_days": 14}, {"lookback_hours": 72}]
)
def test_settings_edited_at_the_same_point_score_on_baselines_of_the_new_settings(
    account, tmp_path, settings
):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, db_path, ALL_KEYS[-36:], scenario_path=scenario)
    advance(db_path, scenario, 24)
    run_cycle(instance, db_path, ALL_KEYS[-1:], scenario_path=scenario)
    advance(db_path, scenario, 2)
    edited = _pools(tmp_path, "edited.yaml", **settings)
    tick = run_cycle(instance, db_path, ALL_KEYS[-1:], scenario_path=scenario, pools_path=edited)
    assert _meta(tick, "entity_baselines")["recomputed"].value is True
    assert _meta(tick, "composite_scores")["recomputed"].value is True
    _assert_scores_fresh(db_path, edited)


def _edit_entities(db_path, how: str):
    con = duckdb.connect(str(db_path))
    try:
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        adset = entities.filter(pl.col("entity_type") == "adset").row(0, named=True)
        campaign = entities.filter(
            (pl.col("entity_type") == "campaign") & pl.col("budget_type").ne_missing("daily")
        ).row(0, named=True)
        if how == "rename":
            con.execute("UPDATE ad_entities SET name = name || ' v2' WHERE entity_id = ?",
                        [adset["entity_id"]])  # fmt: skip
        elif how == "remove":
            con.execute("DELETE FROM ad_entities WHERE entity_id = ?", [adset["entity_id"]])
        elif how == "repool":
            con.execute("UPDATE ad_entities SET pool = 'testing' WHERE entity_id = ?",
                        [adset["entity_id"]])  # fmt: skip
        elif how == "cbo":  # a campaign now holds its ad sets' budget
            con.execute(
                "UPDATE ad_entities SET budget_type = 'daily', daily_budget = 100000 "
                "WHERE entity_id = ?",
                [campaign["entity_id"]],
            )
            con.execute(
                "UPDATE ad_entities SET budget_type = NULL, daily_budget = NULL "
                "WHERE entity_type = 'adset' AND campaign_id = ?",
                [campaign["entity_id"]],
            )
    finally:
        con.close()


def _scores_alone_after_stored_baselines(account, between=lambda db_path: None):
    """entity_baselines stored at the new point in a warehouse-only run, ``between(db_path)``,
    then the scores alone (composite_scores materialised by itself, as from the UI): their
    ``baselines`` metadata, after the scores were checked against a fresh computation."""
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, db_path, ALL_KEYS[-36:], scenario_path=scenario)
    advance(db_path, scenario, 24)
    partial = dg.materialize(
        [*defs.assets],
        selection=["ad_entities", "raw_insights", "insights", "entity_baselines"],
        resources=resources(db_path, scenario_path=scenario),
        instance=instance,
        partition_key=ALL_KEYS[-1],
        raise_on_error=False,
    )
    assert partial.success
    between(db_path)
    alone = dg.materialize(
        [*defs.assets],
        selection=["composite_scores"],
        resources=resources(db_path, scenario_path=scenario),
        instance=instance,
        raise_on_error=False,
    )
    assert alone.success, alone.get_step_failure_events()
    _assert_scores_fresh(db_path, DEFAULT_POOLS_PATH)
    return _meta(alone, "composite_scores")["baselines"].value


@pytest.mark.parametrize("how", ["rename", "remove", "repool", "cbo"])
def test_ad_sets_changed_after_the_baselines_were_stored_are_scored_afresh(account, how):
    """The ad sets change between the stored baselines and the scores: computed afresh."""
    edit = lambda db_path: _edit_entities(db_path, how)  # noqa: E731
    assert _scores_alone_after_stored_baselines(account, edit) == "computed"


def test_scores_alone_right_after_the_baselines_reuse_them_and_match(account):
    """The same sequence with nothing changed in between: the stored ones are used, and they
    are what a fresh computation gives."""
    assert _scores_alone_after_stored_baselines(account) == "stored by entity_baselines"
