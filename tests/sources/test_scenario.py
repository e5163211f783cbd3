"""Scenario files: the shipped default, and errors that name the field path and the bad value."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.sources.simulated import DEFAULT_SCENARIO_PATH, Scenario, load_scenario

EXAMPLE = """
seed: 7
start: 2026-09-01
days: 60
timezone: Europe/Berlin
currency: EUR
pools:
  - {name: retargeting, tier: 1, floor: 200, ceiling: 600}
campaigns:
  - id: "120210000000001"
    name: "RT | cart abandoners"
    pool: retargeting
    adsets:
      - id: "120210000000101"
        daily_budget: 150
        response: {scale: 12.0, elasticity: 0.6}
        aov: 62.0
        audience: 120000
        fatigue: 0.02
        shifts: [{day: 35, efficiency: 0.6}]
"""


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())


def load_raw(tmp_path: Path, data: dict) -> Scenario:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


def test_the_documented_example_loads(tmp_path: Path):
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE)
    sc = load_scenario(path)
    assert sc.account_id == "act_1029384756"
    assert sc.end == date(2026, 10, 31)
    adset = sc.campaigns[0].adsets[0]
    assert (adset.response.scale, adset.response.elasticity, adset.shifts[0].day) == (12.0, 0.6, 35)
    assert (adset.cpm, adset.ctr, adset.start_day, adset.status) == (10.0, 0.012, 0, "ACTIVE")


def test_default_scenario_shape():
    sc = load_scenario(DEFAULT_SCENARIO_PATH)
    assert (sc.seed, sc.start, sc.days, sc.timezone, sc.currency) == (
        7,
        date(2026, 9, 1),
        60,
        "Europe/Berlin",
        "EUR",
    )
    assert [(p.name, p.tier, p.floor, p.ceiling) for p in sc.pools] == [
        ("retargeting", 1, 200, 600),
        ("prospecting", 2, 500, 2000),
        ("testing", 3, 100, 300),
    ]
    adsets = [a for _, a in sc.iter_adsets()]
    assert 10 <= len(sc.campaigns) <= 14 and 36 <= len(adsets) <= 44
    # the default pools file puts every campaign in the pool the scenario names
    pools = load_pools(DEFAULT_POOLS_PATH)
    for camp in sc.campaigns:
        assert pools.pool_for_campaign(camp.id, camp.name) == camp.pool, camp.name
    # daily budgets per pool sit inside floor..ceiling with room both ways
    per_pool: dict[str, float] = {}
    for camp, adset in sc.iter_adsets():
        if adset.status == "PAUSED":
            continue
        if adset.daily_budget:
            per_pool[camp.pool] = per_pool.get(camp.pool, 0) + adset.daily_budget
        elif adset.lifetime_budget:
            days = (adset.end - sc.start).days + 1
            per_pool[camp.pool] = per_pool.get(camp.pool, 0) + adset.lifetime_budget / days
    for camp in sc.campaigns:
        if camp.is_cbo:
            per_pool[camp.pool] += camp.daily_budget
    for pool in sc.pools:
        room = 0.2 * (pool.ceiling - pool.floor)
        assert pool.floor + room < per_pool[pool.name] < pool.ceiling - room, pool.name
    assert sum(a.lifetime_budget is not None for a in adsets) == 1
    assert sum(c.is_cbo for c in sc.campaigns) == 1
    # every ad set delivers the whole history (60 days of hourly Insights each); two small
    # tests stay under the 300 baseline spend that scoring needs
    assert all(a.start_day == 0 and a.status == "ACTIVE" for a in adsets)
    assert sum(a.daily_budget is not None and a.daily_budget * 30 < 300 for a in adsets) == 2
    downs = [s for a in adsets for s in a.shifts if s.efficiency < 1]
    ups = [s for a in adsets for s in a.shifts if s.efficiency > 1]
    assert len(downs) >= 2 and len(ups) >= 2
    assert any(a.audience < 20000 and a.fatigue >= 0.1 for a in adsets)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: r["campaigns"][2]["adsets"][0]["response"].update(elasticity=1.5),
            ["campaigns[2].adsets[0].response.elasticity", "1.5"],
        ),
        (
            lambda r: r["campaigns"][0].update(pool="brand"),
            ["campaigns[0].pool", "'brand'", "retargeting, prospecting, testing"],
        ),
        (
            lambda r: r["campaigns"][1]["adsets"][1].update(
                id=r["campaigns"][0]["adsets"][0]["id"]
            ),
            [
                "campaigns[1].adsets[1].id",
                "duplicate id",
                "campaigns[0].adsets[0].id",
                "'120210000001001'",
            ],
        ),
        (
            lambda r: r["campaigns"][3].update(id=r["campaigns"][0]["id"]),
            ["campaigns[3].id", "duplicate id", "'120210000000001'"],
        ),
        (
            lambda r: r["campaigns"][0]["adsets"][1].pop("daily_budget"),
            ["campaigns[0].adsets[1]", "no budget", "'120210000001002'"],
        ),
        (
            lambda r: r["campaigns"][6]["adsets"][1].update(daily_budget=20),
            ["campaigns[6].adsets[1].daily_budget", "CBO", "20"],
        ),
        (
            lambda r: r["campaigns"][0]["adsets"][0].update(lifetime_budget=900),
            ["campaigns[0].adsets[0]", "not both", "60", "900"],
        ),
        (
            lambda r: r["campaigns"][0]["adsets"][0].update(daily_budget=-3),
            ["campaigns[0].adsets[0].daily_budget", "-3"],
        ),
        (
            lambda r: r["campaigns"][8]["adsets"][0].pop("end"),
            ["campaigns[8].adsets[0]", "lifetime_budget and end go together"],
        ),
        (
            lambda r: r["campaigns"][8]["adsets"][0].update(end=date(2026, 8, 1)),
            ["campaigns[8].adsets[0].end", "2026-08-01"],
        ),
        (lambda r: r.update(timezone="Mars/Olympus"), ["timezone", "'Mars/Olympus'"]),
        (lambda r: r.update(currency="XYZ"), ["currency", "'XYZ'"]),
        (lambda r: r["campaigns"][0].update(id="12a"), ["campaigns[0].id", "'12a'"]),
        (lambda r: r["campaigns"][0].update(status="DELETED"), ["campaigns[0].status", "DELETED"]),
        (lambda r: r["pools"][0].update(floor=900), ["pools[0]", "floor 900"]),
        (lambda r: r["campaigns"][0]["adsets"][0].update(ctr=1.2), ["ctr", "1.2"]),
        (lambda r: r["campaigns"][0]["adsets"][0].update(colour="red"), ["colour", "'red'"]),
    ],
)
def test_errors_name_the_field_and_the_value(tmp_path, raw, mutate, expected):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        load_raw(tmp_path, data)
    message = str(info.value)
    for part in expected:
        assert part in message, (part, message)


def test_missing_file_and_not_a_mapping(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_scenario(bad)
