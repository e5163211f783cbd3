"""Config files fail on load with one ConfigError naming the file, and the field or line.

Every case here passed the loader (or raised a traceback) before: a 25-digit ceiling, a
duplicate key, a binary file, a directory.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from budget_pipeline import contracts
from budget_pipeline.config.loading import ConfigError, parse_yaml
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, MAX_AMOUNT, PoolsConfig, load_pools
from budget_pipeline.engine.policy import plan_with_policies as plan_rebalance
from budget_pipeline.money import MAX_AMOUNT_MINOR
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.simulated import load_scenario

DEFAULT_TEXT = DEFAULT_POOLS_PATH.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str | bytes, name: str = "pools.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "shown"),
    [
        ("ceiling: 600", "ceiling: 6000000000000000000000000", "pools[0].ceiling", "6e+24"),
        ("min_adset_budget: 1.00 ", "min_adset_budget: 1e25 ", "settings.min_adset_budget", "1e25"),
        ("floor: 500", "floor: 10000000000000.01", "pools[1].floor", "10000000000000.01"),
        ("min_baseline_spend: 300", "min_baseline_spend: 1e16", "settings.min_baseline_spend", ""),
    ],
)
def test_an_amount_beyond_int64_minor_units_is_refused_by_field(tmp_path, old, new, field, shown):
    assert old in DEFAULT_TEXT
    with pytest.raises(ConfigError) as err:
        load_pools(write(tmp_path, DEFAULT_TEXT.replace(old, new, 1)))
    message = str(err.value)
    assert field in message and shown in message and "largest amount" in message
    assert str(tmp_path / "pools.yaml") in message


def test_amounts_at_the_bound_plan_without_overflow():
    # The largest allowed ceiling and floor, and budgets of 10^15 minor units each: the planner
    # forms pool totals and room in int64 and must neither raise nor wrap around.
    config = PoolsConfig(
        pools=[
            {
                "name": "a",
                "tier": 1,
                "floor": MAX_AMOUNT / 2,
                "ceiling": MAX_AMOUNT,
                "policy": "composite",
            }
        ],
        settings={"min_adset_budget": MAX_AMOUNT / 10},
    )
    assert config.ceiling_minor("a") == MAX_AMOUNT_MINOR
    as_of = datetime(2026, 10, 30)
    ids = ["x", "y", "z"]
    entities = pl.DataFrame(
        [
            {"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "name": e,
             "status": "ACTIVE", "budget_type": "daily", "daily_budget": MAX_AMOUNT_MINOR // 3,
             "lifetime_budget": None, "budget_remaining": None, "end_date": None,
             "currency": "EUR", "pool": "a", "locked": False}
            for e in ids
        ],
        schema=contracts.AD_ENTITIES,
    )  # fmt: skip
    scores = pl.DataFrame(
        [
            {"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "as_of": as_of,
             "status": "scored", "score": s}
            for e, s in zip(ids, [0.3, 0.9, 0.95], strict=True)
        ],
        schema=contracts.SCORES,
    )  # fmt: skip
    actions = pl.DataFrame(
        [
            {"entity_id": "x", "action": "decrease", "pct": 25.0, "trigger": "t", "as_of": as_of},
            {"entity_id": "y", "action": "increase", "pct": 15.0, "trigger": "t", "as_of": as_of},
        ],
        schema=contracts.ACTIONS,
    )
    plan = plan_rebalance(entities, scores, actions, config, as_of=as_of)
    old, new = plan["old_budget"].to_list(), plan["new_budget"].to_list()
    assert sum(new) == sum(old) and new != old  # money moved, none created, to the minor unit


def test_the_ceilings_must_add_up_within_int64(tmp_path):
    pools = [{"name": f"p{i}", "tier": 1, "floor": 0, "ceiling": MAX_AMOUNT} for i in range(4612)]
    with pytest.raises(
        ConfigError, match="ceilings add up to 4,612,000,000,000,000,000 minor units"
    ):
        load_pools(write(tmp_path, yaml.safe_dump({"pools": pools})))


def test_a_scenario_budget_beyond_the_bound_is_named(tmp_path):
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8"))
    raw["campaigns"][1]["adsets"][0]["daily_budget"] = 10**25
    with pytest.raises(ConfigError, match=r"campaigns\[1\]\.adsets\[0\]\.daily_budget: 1e\+25"):
        load_scenario(write(tmp_path, yaml.safe_dump(raw), "scenario.yaml"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "currency: EUR\nsettings:\n  kill_switch: true\n  kill_switch: false\npools: []\n",
            "duplicate key 'kill_switch' on line 4 (first on line 3)",
        ),
        (
            DEFAULT_TEXT + "currency: USD\n",
            f"duplicate key 'currency' on line {DEFAULT_TEXT.count(chr(10)) + 1} (first on line 2)",
        ),
        (
            "pools:\n  - {name: a, tier: 1, floor: 1, ceiling: 2, floor: 3}\n",
            "duplicate key 'floor' on line 2 (first on line 2)",
        ),
    ],
)
def test_a_key_given_twice_is_refused_with_its_lines(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_pools(write(tmp_path, text))


def test_merge_keys_may_still_override_what_they_merge():
    text = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n"
    assert parse_yaml(text, source="t") == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d, "is a directory, not a file"),
        (lambda d: write(d, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "is a binary file"),
        (lambda d: write(d, b"currency: \xe9UR\n"), "is not UTF-8 text (byte 0xe9 at offset 10)"),
        (lambda d: write(d, ""), "is empty"),
        (lambda d: write(d, "  \n\n"), "is empty"),
        (lambda d: write(d, "# only a comment\n"), "is empty (only comments)"),
        (lambda d: write(d, "- a\n- b\n"), "must be a YAML mapping, got list"),
        (lambda d: write(d, "pools: [\n"), "is not valid YAML, line 2"),
        (lambda d: d / "missing.yaml", "not found"),
    ],
)
def test_an_unusable_file_is_one_error_naming_the_path(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_pools(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)
    with pytest.raises(ConfigError, match="scenario"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!!int currency: EUR\n", "line 1, column 1: 'currency' cannot be read as int"),
        ("currency: EUR\nsettings: {interval_hours: !!int abc}\n", "line 2, column 28: 'abc'"),
        ("currency: EUR\nsettings:\n  min_move: !!float ten\n", "line 3, column 13: 'ten'"),
        ("currency: !!timestamp nope\n", "line 1, column 11: 'nope' cannot be read as timestamp"),
    ],
)
def test_a_value_its_explicit_tag_cannot_build_is_named_with_its_line(tmp_path, text, expected):
    # review 11b: these were a bare ValueError (a traceback) from PyYAML's constructor
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_pools(write(tmp_path, text))
