"""The scores read the baselines ``entity_baselines`` stored at the same point instead of
computing them a second time, only where those are the ones they would compute: one point,
the one stored, from the same inputs. Through the real Dagster machinery on a copy of the
default account whose clock stops one day before its last partition; the baselines the
scores read are compared, to the bit, with the ones computed afresh."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_helpers import ALL_KEYS, advance, run_cycle, short_clock_account
from polars.testing import assert_frame_equal

from budget_pipeline import db
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.contracts import AD_ENTITIES, SCORES, conform
from budget_pipeline.defs.decisions.assets import _score_inputs, windows_needed
from budget_pipeline.defs.evaluation_point import evaluation_point
from budget_pipeline.defs.warehouse.assets import stored_baselines
from budget_pipeline.engine import baselines as engine_baselines
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.scoring import score_entities

CONFIG = load_pools(DEFAULT_POOLS_PATH)


@pytest.fixture()
def account(tmp_path):
    return short_clock_account(tmp_path)  # the clock stops a day before the last partition


@pytest.fixture()
def computed(monkeypatch):
    """How many times the scores computed their baselines (the engine's entity_baselines as
    score_inputs calls it; the baselines asset calls it under another name)."""
    calls: list[int] = []
    compute = engine_baselines.entity_baselines

    def counted(*args, **kwargs):
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(engine_baselines, "entity_baselines", counted)
    return calls


def _scores_meta(result):
    return result.asset_materializations_for_node("composite_scores")[-1].metadata


def _fresh(con, as_of):
    """The windows and baselines at ``as_of`` computed afresh, and the ad sets."""
    entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
    windows, baselines = engine_baselines.score_inputs(
        con, [as_of], CONFIG.settings, windows_needed(CONFIG), entities
    )
    return windows, baselines, entities


def test_a_new_day_is_scored_on_the_stored_baselines_the_same_to_the_bit(account, computed):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    first = run_cycle(instance, db_path, ALL_KEYS[-36:], scenario_path=scenario)
    # a backfill scores many points: the baselines stored are only the newest one's
    assert _scores_meta(first)["evaluation_points"].value > 1
    assert _scores_meta(first)["baselines"].value == "computed"
    assert len(computed) == 1

    advance(db_path, scenario, 24)  # the next midnight: one new evaluation point
    new_day = run_cycle(instance, db_path, ALL_KEYS[-1:], scenario_path=scenario)
    meta = _scores_meta(new_day)
    assert meta["evaluation_points"].value == 1
    assert meta["baselines"].value == "stored by entity_baselines"
    assert len(computed) == 1  # not computed a second time

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        as_of = evaluation_point(cycle_as_of(con), CONFIG.settings.interval_hours)
        windows, baselines, entities = _fresh(con, as_of)
        read_windows, read_baselines, reused = _score_inputs(con, [as_of], CONFIG, entities)
        assert reused
        assert read_baselines.height == entities.filter(pl.col("entity_type") == "adset").height
        assert_frame_equal(read_baselines, baselines, check_exact=True)
        assert_frame_equal(read_windows, windows, check_exact=True)
        # and the scores the cycle stored are those of the baselines computed afresh
        stored_scores = conform(
            db.read(con, "select_composite_scores_at", {"as_of": [as_of]}), SCORES
        )
        want = score_entities(windows, baselines, entities, CONFIG)
        assert_frame_equal(stored_scores.sort("entity_id"), conform(want, SCORES).sort("entity_id"))
    finally:
        con.close()


def test_baselines_stored_from_other_inputs_are_computed_again(account, computed):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, db_path, ALL_KEYS[-36:], scenario_path=scenario)
    con = duckdb.connect(str(db_path))
    try:
        as_of = evaluation_point(cycle_as_of(con), CONFIG.settings.interval_hours)
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        settings = CONFIG.settings
        assert stored_baselines(con, [as_of], settings, entities) is not None
        # another point, several points, other settings, another ad set list: computed
        earlier = as_of.replace(day=as_of.day - 1)
        assert stored_baselines(con, [earlier], settings, entities) is None
        assert stored_baselines(con, [earlier, as_of], settings, entities) is None
        longer = settings.model_copy(update={"baseline_days": settings.baseline_days + 1})
        assert stored_baselines(con, [as_of], longer, entities) is None
        renamed = entities.with_columns(
            name=pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.lit("renamed"))
            .otherwise(pl.col("name"))
        )
        assert stored_baselines(con, [as_of], settings, renamed) is None

        # an ad set renamed on the account after the baselines were stored: the scores
        # compute them (and still score every ad set)
        entity_id = entities["entity_id"][0]
        con.execute("UPDATE ad_entities SET name = 'renamed' WHERE entity_id = ?", [entity_id])
        calls = len(computed)
        windows, baselines, reused = _score_inputs(
            con, [as_of], CONFIG, conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        )
        assert not reused and len(computed) == calls + 1
        want_windows, want_baselines, _ = _fresh(con, as_of)
        assert_frame_equal(baselines, want_baselines, check_exact=True)
        assert_frame_equal(windows, want_windows, check_exact=True)
    finally:
        con.close()


def test_stored_baselines_at_another_point_are_refused_with_the_points(account):
    db_path, scenario = account
    instance = dg.DagsterInstance.ephemeral()
    run_cycle(instance, db_path, ALL_KEYS[-36:], scenario_path=scenario)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        as_of = evaluation_point(cycle_as_of(con), CONFIG.settings.interval_hours)
        _, baselines, entities = _fresh(con, as_of)
        shifted = baselines.with_columns(pl.col("as_of").dt.offset_by("-1d"))
        with pytest.raises(ValueError, match=r"stored baselines: rows at \['2026-10-2"):
            engine_baselines.score_inputs(
                con, [as_of], CONFIG.settings, [48, 72, 96], entities, stored=lambda c: shifted
            )
        # given at the point, they are used as they are: nothing computed
        windows, given = engine_baselines.score_inputs(
            con,
            [as_of],
            CONFIG.settings,
            windows_needed(CONFIG),
            entities,
            stored=lambda c: baselines,
        )
        assert given is baselines
        assert_frame_equal(windows, _fresh(con, as_of)[0], check_exact=True)
    finally:
        con.close()
