"""The scenario library: bundled files, their documented stories, and unseen variants."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.sources.simulated import SimulatedAccount
from budget_pipeline.sources.simulated.holders import budget_holders
from budget_pipeline.sources.simulated.library import (
    KINDS,
    bundled_scenarios,
    generate_scenario,
    scenario_path,
    scenario_yaml,
)
from budget_pipeline.sources.simulated.replay import replay

REQUIRED = {
    "winner",
    "collapse",
    "misallocated",
    "near_optimal_noisy",
    "fatigue",
    "weekday_seasonality",
    "cbo_lifetime",
    "thin_data",
}


@pytest.fixture(scope="module")
def pools():
    return load_pools(DEFAULT_POOLS_PATH)


def check_shape(scenario, pools) -> None:
    """Usable with the default pools file unchanged, with room to move."""
    assert scenario.days == 60
    for camp in scenario.campaigns:
        assert pools.pool_for_campaign(camp.id, camp.name) == camp.pool
    account = SimulatedAccount(scenario)
    holders = budget_holders(account, pools)
    sums = np.bincount(holders.pool_index, weights=holders.budget, minlength=3)
    assert (sums > 1.15 * holders.floor).all() and (sums < 0.85 * holders.ceiling).all()
    for _, adset in scenario.iter_adsets():
        assert all(s.day >= scenario.days for s in adset.shifts)  # changes happen in the run
    history = account.hourly_insights(scenario.start, scenario.end)
    assert history["date"].min() == scenario.start
    assert history["adset_id"].n_unique() == sum(len(c.adsets) for c in scenario.campaigns)


def test_every_kind_is_bundled_documented_and_generated(pools):
    assert set(KINDS) >= REQUIRED
    bundled = bundled_scenarios()
    for kind in KINDS:
        text = scenario_path(kind).read_text()
        assert text.startswith("# Library scenario") and "right move" in text
        assert text == scenario_yaml(kind, 0)  # the file is what the generator makes
        assert bundled[kind] == generate_scenario(kind, 0)
        check_shape(bundled[kind], pools)


@pytest.mark.parametrize("kind", KINDS)
def test_variants_are_new_and_keep_the_shape(kind, pools):
    a, b = generate_scenario(kind, 11), generate_scenario(kind, 12)
    ids_a = {x.id for _, x in a.iter_adsets()}
    assert ids_a.isdisjoint({x.id for _, x in b.iter_adsets()})
    assert [x.response for _, x in a.iter_adsets()] != [x.response for _, x in b.iter_adsets()]
    check_shape(a, pools)
    assert generate_scenario(kind, 11) == a  # reproducible


def test_the_stories_hold(pools):
    sc = bundled_scenarios()
    # collapse: the collapsed ad set earns far less per euro in the run than in its history
    collapse = sc["collapse"]
    victim = next(a.id for _, a in collapse.iter_adsets() if a.shifts)
    run = replay(collapse, [], 10, noise="none").delivery.filter(pl.col("adset_id") == victim)
    roas = run["purchase_value"] / run["spend"]
    assert roas[5:].mean() < 0.4 * roas[0]
    # weekday seasonality: Sunday converts ~1.7x Monday for the same spend
    week = replay(sc["weekday_seasonality"], [], 7, noise="none").per_day
    by_day = week.group_by("date").agg(pl.col("purchase_value", "spend").sum())
    ratio = by_day.with_columns(
        r=pl.col("purchase_value") / pl.col("spend"), wd=pl.col("date").dt.weekday()
    )
    r = dict(zip(ratio["wd"], ratio["r"], strict=True))
    assert r[7] / r[1] > 1.5
    # thin data: most ad sets make under one conversion a day
    thin = replay(sc["thin_data"], [], 7, noise="none").delivery
    per_day = thin.group_by("adset_id").agg(pl.col("conversions").mean())["conversions"]
    assert (per_day < 1.0).mean() > 0.6
    # fatigue: the tired ad sets run at a fraction of their fresh efficiency
    fatigue = SimulatedAccount(sc["fatigue"]).response_curves()
    tired = {a.id for _, a in sc["fatigue"].iter_adsets() if a.fatigue >= 0.2}
    eff = fatigue.filter(pl.col("adset_id").is_in(tired))["efficiency_now"]
    assert len(tired) == 3 and eff.max() < 0.7
    # cbo_lifetime: CBO campaigns and a lifetime budget
    cbo = sc["cbo_lifetime"]
    assert sum(c.is_cbo for c in cbo.campaigns) == 3
    assert any(a.lifetime_budget for _, a in cbo.iter_adsets())


def test_unknown_kind_and_bad_seed():
    with pytest.raises(ValueError, match="unknown scenario kind 'nope'"):
        generate_scenario("nope", 0)
    with pytest.raises(ValueError, match="seed"):
        generate_scenario("winner", -3)
