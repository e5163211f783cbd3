"""The Meta rule policy: a native rule as a pool's policy, under the allocator's guards.

Worked numbers in EUR minor units; the learning cap is 15 % and the minimum ad-set budget
1.00 EUR (100) unless a test says otherwise.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import allocate
from budget_pipeline.engine.guards import plan_violations
from budget_pipeline.engine.meta_rules import TIME_PRESETS, MetaRule, RuleError, parse_rule
from budget_pipeline.engine.policy import plan_with_policies
from budget_pipeline.engine.rule_policy import (
    METRIC_NAMES,
    PRESET_WINDOW_HOURS,
    propose_rule,
    rule_metrics,
    rule_window_hours,
)
from budget_pipeline.engine.signals import WINDOW_METRICS

AS_OF = datetime(2026, 10, 30, 0, 0)


def plan_pool_with_rule(
    pool, entities, metrics, rule, config, *, as_of, last_changes=None, **allocation
) -> pl.DataFrame:
    """One rule pool: the rule's proposals through the allocator, money kept in the pool."""
    proposals = propose_rule(
        pool, entities, metrics, rule, config, as_of=as_of, last_changes=last_changes
    )
    return allocate(
        entities.filter(pl.col("pool") == pool),
        proposals,
        config,
        as_of=as_of,
        last_changes=last_changes,
        score_exempt_pools=(pool,),
        closed_pools=(pool,),
        **allocation,
    )


# ------------------------------------------------------------------------------ helpers


def config(*pools: dict[str, Any], **settings_: Any) -> PoolsConfig:
    return PoolsConfig(settings=settings_, pools=list(pools))


def rule_pool(name: str = "r", tier: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tier": tier,
        "floor": 0,
        "ceiling": 100_000,
        "policy": "meta_rule",
        "meta_rule": extra.pop("meta_rule", "not-read.json"),
        **extra,
    }


def composite_pool(name: str = "comp", tier: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "tier": tier, "floor": 0, "ceiling": 100_000, "policy": "composite",
        **extra,
    }  # fmt: skip


RULE_ONLY = config(rule_pool())


def entities(*rows: tuple[str, str, int], **overrides: dict[str, Any]) -> pl.DataFrame:
    """Rows ``(entity_id, pool, daily_budget)``: ad sets of campaign ``c1``."""
    records = []
    for entity_id, pool, budget in rows:
        record = {
            "entity_id": entity_id,
            "entity_type": "adset",
            "campaign_id": "c1",
            "name": entity_id,
            "status": "ACTIVE",
            "budget_type": "daily",
            "daily_budget": budget,
            "currency": "EUR",
            "pool": pool,
            "locked": False,
        }
        record.update(overrides.get(entity_id, {}))
        records.append(record)
    return pl.DataFrame(records, schema=contracts.AD_ENTITIES)


def roas(**by_adset: float | None) -> pl.DataFrame:
    """A metrics frame with the plain (72 h) ``website_purchase_roas`` per ad set."""
    return pl.DataFrame(
        {"adset_id": list(by_adset), "website_purchase_roas": list(by_adset.values())},
        schema={"adset_id": pl.Utf8, "website_purchase_roas": pl.Float64},
    )


def rule(
    filters: list[dict[str, Any]], spec: dict[str, Any], *, name: str | None = "test rule"
) -> MetaRule:
    obj: dict[str, Any] = {
        "evaluation_spec": {
            "evaluation_type": "SCHEDULE",
            "filters": [{"field": "entity_type", "value": "ADSET", "operator": "EQUAL"}, *filters],
        },
        "execution_spec": {
            "execution_type": "REBALANCE_BUDGET",
            "execution_options": [{"field": "rebalance_spec", "value": spec, "operator": "EQUAL"}],
        },
    }
    if name is not None:
        obj["name"] = name
    return parse_rule(obj)


def roas_below(value: float) -> list[dict[str, Any]]:
    return [{"field": "website_purchase_roas", "value": value, "operator": "LESS_THAN"}]


EVERYONE = [{"field": "spent", "value": -1, "operator": "GREATER_THAN"}]
BY_ROAS = {"target_field": "website_purchase_roas"}


def changes(*rows: tuple[str, float, int]) -> pl.DataFrame:
    """Rows ``(entity_id, hours_ago, changes_last_hour)``."""
    return pl.DataFrame(
        [
            {"entity_id": e, "changed_at": AS_OF - timedelta(hours=h), "changes_last_hour": n}
            for e, h, n in rows
        ],
        schema=contracts.LAST_CHANGES,
    )


def by_id(plan: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["entity_id"]: row for row in plan.iter_rows(named=True)}


def assert_safe(plan: pl.DataFrame, cfg: PoolsConfig, **kwargs: Any) -> None:
    assert plan.schema == pl.Schema(contracts.PLAN)
    assert plan["plan_id"].n_unique() == 1
    for pool in plan["pool"].unique():
        rows = plan.filter(pl.col("pool") == pool)
        if cfg.by_name[pool].policy == "meta_rule":  # a rule pool keeps its money spending
            spending = rows.filter(~pl.col("pause"))["new_budget"].sum()
            assert spending == rows["old_budget"].sum(), pool
    broken = {
        k: v for k, v in plan_violations(plan, cfg, as_of=AS_OF, **kwargs).items() if v.height
    }
    assert not broken, broken


def windows(rows: dict[str, dict[str, float]], hours: int = 72) -> pl.DataFrame:
    """WINDOW_METRICS rows at AS_OF: ``{adset_id: {spend, impressions, ...}}``."""
    records = []
    for adset_id, sums in rows.items():
        record: dict[str, Any] = {c: 0 for c in WINDOW_METRICS if c not in ("as_of",)}
        record.update(adset_id=adset_id, campaign_id="c1", as_of=AS_OF, window_hours=hours, **sums)
        records.append(record)
    return pl.DataFrame(records, schema=WINDOW_METRICS)


# ------------------------------------------------------------------------- rule_metrics


def test_rule_metrics_worked_numbers_and_names():
    w = pl.concat(
        [
            windows(
                {
                    "a": {
                        "spend": 30.0,
                        "impressions": 2_000,
                        "reach": 800,
                        "clicks": 40,
                        "conversions": 3.0,
                        "purchase_value": 90.0,
                    },
                    "b": {"spend": 5.0, "impressions": 100, "reach": 50, "clicks": 0},
                },
                hours=72,
            ),
            windows({"a": {"spend": 70.0, "impressions": 5_000, "reach": 1_000}}, hours=168),
            windows({"a": {"spend": 1.0}}, hours=72).with_columns(
                pl.lit(AS_OF - timedelta(days=1)).alias("as_of")  # another evaluation point
            ),
        ]
    )
    m = rule_metrics(w, AS_OF, currency="EUR")
    rows = by_id(m.rename({"adset_id": "entity_id"}))
    a, b = rows["a"], rows["b"]
    # 72 h: money in minor units, as Meta's rules read spend and costs.
    assert a["spent"] == a["last_3d__spent"] == a["last_3_days__spent"] == 3_000
    assert a["impressions"] == 2_000 and a["reach"] == 800 and a["clicks"] == 40
    assert a["ctr"] == pytest.approx(2.0)  # percent
    assert a["cpc"] == pytest.approx(75.0)
    assert a["cpm"] == pytest.approx(1_500.0)
    assert a["cpp"] == pytest.approx(3_750.0)
    assert a["frequency"] == pytest.approx(2.5)
    assert a["results"] == 3.0
    assert a["cost_per_result"] == a["cpa"] == a["cost_per_purchase_fb"] == pytest.approx(1_000)
    assert a["website_purchase_roas"] == a["purchase_roas"] == pytest.approx(3.0)
    # 168 h under both of Meta's spellings; no plain names for it.
    assert a["last_7d__spent"] == a["last_7_days__spent"] == 7_000
    assert a["last_7d__frequency"] == pytest.approx(5.0)
    assert a["last_7d__cost_per_result"] is None  # no result: no cost per result
    # b: no clicks or conversions → those ratios are missing; absent from 168 h → zero sums.
    assert b["cpc"] is None and b["cost_per_result"] is None and b["ctr"] == 0.0
    assert b["last_7d__spent"] == 0 and b["last_7d__cpm"] is None
    assert set(METRIC_NAMES) <= set(m.columns)
    assert not [c for c in m.columns if c.startswith(("last_2d", "last_14d", "last_30d"))]
    # JPY has no minor unit below the yen.
    assert rule_metrics(w, AS_OF, currency="JPY")["spent"].to_list() == [30.0, 5.0]


def test_rule_window_hours_names_the_windows_a_rule_reads():
    r = rule(
        [
            {"field": "time_preset", "value": "LAST_7D", "operator": "EQUAL"},
            {"field": "last_3_days_spent", "value": 100, "operator": "GREATER_THAN"},
            {"field": "name", "value": "x", "operator": "CONTAIN"},
        ],
        {"type": "PROPORTIONAL", "target_field": "website_purchase_roas"},
    )
    assert rule_window_hours(r) == [72, 168]
    assert set(PRESET_WINDOW_HOURS) <= set(TIME_PRESETS)  # names meta_rules accepts
    assert rule_window_hours(rule(EVERYONE, {"type": "EVEN"})) == [72]


# ------------------------------------------------------------------ worked rule pools


def test_matched_only_proportional_caps_steps_and_glides():
    # 300.00 shared by ROAS 3:1:2 → targets 150.00 / 50.00 / 100.00; one step is 15 % = 15.00.
    r = rule(EVERYONE, {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS})
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000), ("a3", "r", 10_000))
    metrics = roas(a1=3.0, a2=1.0, a3=2.0).with_columns(pl.lit(1.0).alias("spent"))
    plan = plan_pool_with_rule("r", ents, metrics, r, RULE_ONLY, as_of=AS_OF)
    rows = by_id(plan)
    assert (rows["a1"]["new_budget"], rows["a1"]["target_budget"]) == (11_500, 15_000)
    assert (rows["a2"]["new_budget"], rows["a2"]["target_budget"]) == (8_500, 5_000)
    assert (rows["a3"]["new_budget"], rows["a3"]["target_budget"]) == (10_000, 10_000)
    assert [rows[e]["action"] for e in ("a1", "a2", "a3")] == ["increase", "decrease", "hold"]
    assert rows["a1"]["reason"].startswith('meta rule "test rule": increase to 150.00 EUR')
    assert (
        "— increase 15.00 EUR to 115.00 EUR (from same pool); glide path: one step is at most 15 %"
        in (rows["a1"]["reason"])
    )
    assert (
        "decrease to 50.00 EUR (-50.00 EUR); matched: 5000 of the matched total 30000"
        in (rows["a2"]["reason"])
    )
    assert rows["a1"]["trigger"] == "test rule" and rows["a3"]["trigger"] is None
    assert rows["a1"]["tier"] == 1 and rows["a1"]["score"] is None
    assert_safe(plan, RULE_ONLY)


def test_no_pause_proportional_shrinks_increases_to_the_capped_decrease():
    # D = 100.00 (a1's budget) shared by ROAS 1:2:2 → a1 keeps 20.00, a2 and a3 +40.00 each.
    # a1 may give only 15.00 this step; a2 and a3 want 15.00 each and get 7.50 each.
    r = rule(roas_below(1.5), {"type": "NO_PAUSE_PROPORTIONAL", **BY_ROAS})
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000), ("a3", "r", 10_000))
    plan = plan_pool_with_rule("r", ents, roas(a1=1.0, a2=2.0, a3=2.0), r, RULE_ONLY, as_of=AS_OF)
    rows = by_id(plan)
    assert rows["a1"]["target_budget"] == 2_000 and rows["a1"]["new_budget"] == 8_500
    assert rows["a2"]["new_budget"] == rows["a3"]["new_budget"] == 10_750
    assert rows["a2"]["target_budget"] == rows["a3"]["target_budget"] == 14_000
    assert "scaled down: not enough freed budget" in rows["a2"]["reason"]
    assert "glide path: one step is at most 15 %" in rows["a1"]["reason"]
    assert_safe(plan, RULE_ONLY)


def test_decreases_shrink_by_largest_remainder_when_increases_take_less():
    # MATCHED_ONLY among a1..a3 by ROAS 1:1:8 → 30.00 / 30.00 / 240.00 of 300.00; a3 is at
    # 100.00 so it may take only 15.00, while a1 and a2 offer 15.00 each: each gives 7.50.
    r = rule(EVERYONE, {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS})
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000), ("a3", "r", 10_001))
    metrics = roas(a1=1.0, a2=1.0, a3=8.0).with_columns(pl.lit(5.0).alias("spent"))
    plan = plan_pool_with_rule("r", ents, metrics, r, RULE_ONLY, as_of=AS_OF)
    rows = by_id(plan)
    assert rows["a3"]["new_budget"] == 10_001 + 1_500
    assert sorted([rows["a1"]["delta"], rows["a2"]["delta"]]) == [-750, -750]
    assert "shrunk to what recipients could take" in rows["a1"]["reason"]
    assert_safe(plan, RULE_ONLY)


@pytest.mark.parametrize("rtype", ["EVEN", "PROPORTIONAL"])
def test_even_and_proportional_pause_frees_money_to_the_recipients(rtype: str):
    # a1 matches (ROAS 0.5 < 1.0): Meta pauses it and hands its 100.00 to a2 / a3. With six
    # recipients of 100.00 (15.00 a step each, 90.00 in all) the 100.00 cannot all go this
    # cycle: the pause waits and a1 is cut one step. Its 15.00 goes to the largest wanted change
    # first (PROPORTIONAL: a2's +75 %), or is shared in proportion when the wishes are equal.
    spec = {"type": rtype, **({} if rtype == "EVEN" else BY_ROAS)}
    r = rule(roas_below(1.0), spec, name=None)
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000), ("a3", "r", 10_000))
    plan = plan_pool_with_rule("r", ents, roas(a1=0.5, a2=3.0, a3=1.0), r, RULE_ONLY, as_of=AS_OF)
    rows = by_id(plan)
    assert not rows["a1"]["pause"] and rows["a1"]["delta"] == -1_500
    assert rows["a1"]["reason"].startswith(f'meta rule "{rtype}": pause (matched: paused')
    assert "pause waits" in rows["a1"]["reason"]
    wants = {"EVEN": (15_000, 15_000), "PROPORTIONAL": (17_500, 12_500)}[rtype]
    gets = {"EVEN": (750, 750), "PROPORTIONAL": (1_500, 0)}[rtype]
    for entity_id, want, got in zip(("a2", "a3"), wants, gets, strict=True):
        row = rows[entity_id]
        assert (row["delta"], row["action"]) == (got, "increase" if got else "hold")
        assert f"increase to {want // 100}.00 EUR" in row["reason"]
        assert row["trigger"] == rtype
    assert_safe(plan, RULE_ONLY)


def test_a_pause_whose_money_fits_frees_it_to_the_recipients():
    # a1 (20.00) is paused by EVEN; a2 and a3 (100.00 each) take 10.00 each: all of it.
    r = rule(roas_below(1.0), {"type": "EVEN"})
    ents = entities(("a1", "r", 2_000), ("a2", "r", 10_000), ("a3", "r", 10_000))
    plan = plan_pool_with_rule("r", ents, roas(a1=0.5, a2=3.0, a3=1.0), r, RULE_ONLY, as_of=AS_OF)
    rows = by_id(plan)
    assert rows["a1"]["pause"] and rows["a1"]["new_budget"] == 2_000  # stored budget kept
    assert (rows["a2"]["delta"], rows["a3"]["delta"]) == (1_000, 1_000)
    assert "goes to active ad sets" in rows["a1"]["reason"]
    assert_safe(plan, RULE_ONLY)


def test_locked_recent_busy_and_paused_entities_hold():
    # a1 locked (outside the rule), a2 changed 2 h ago, a5 edited 4 times this hour, a6 not
    # ACTIVE, c9 a CBO campaign. The rule shares a2..a5 by ROAS; only a3 → a4 can move.
    cfg = config(rule_pool(locked=["a1"]))
    ents = entities(
        ("a1", "r", 10_000),
        ("a2", "r", 10_000),
        ("a3", "r", 10_000),
        ("a4", "r", 10_000),
        ("a5", "r", 10_000),
        ("a6", "r", 10_000),
        ("c9", "r", 10_000),
        a6={"status": "PAUSED"},
        c9={"entity_type": "campaign", "campaign_id": "c9"},
    )
    metrics = roas(a1=0.1, a2=3.0, a3=0.5, a4=2.5, a5=0.1, a6=9.0).with_columns(
        pl.lit(1.0).alias("spent")
    )
    last = changes(("a2", 2.0, 1), ("a5", 8.0, 4))
    r = rule(EVERYONE, {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS})
    plan = plan_pool_with_rule("r", ents, metrics, r, cfg, as_of=AS_OF, last_changes=last)
    rows = by_id(plan)
    for held in ("a1", "a2", "a5", "a6", "c9"):
        assert rows[held]["delta"] == 0 and not rows[held]["pause"], held
        assert rows[held]["action"] == "hold"
    assert rows["a1"]["reason"] == (
        'meta rule "test rule": not evaluated (locked or not ACTIVE) — hold: locked'
    )
    assert "hold: min interval: last change 2.0 h before as_of (< 6 h)" in rows["a2"]["reason"]
    assert "increase to" in rows["a2"]["reason"]  # what the rule wanted is still said
    assert "hold: 4 changes in the last hour (max 4 per hour)" in rows["a5"]["reason"]
    assert "hold: status PAUSED" in rows["a6"]["reason"]
    assert "a Meta rule moves ad-set budgets, not a CBO campaign's" in rows["c9"]["reason"]
    assert rows["a3"]["new_budget"] == 8_500 and rows["a4"]["new_budget"] == 11_500
    assert_safe(plan, cfg, last_changes=last, entities=ents)


def test_a_recently_changed_match_is_not_paused():
    r = rule(roas_below(1.0), {"type": "EVEN"})
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000))
    last = changes(("a1", 1.0, 1))
    plan = plan_pool_with_rule(
        "r", ents, roas(a1=0.5, a2=3.0), r, RULE_ONLY, as_of=AS_OF, last_changes=last
    )
    row = by_id(plan)["a1"]
    assert (row["pause"], row["action"], row["new_budget"]) == (False, "hold", 10_000)
    assert row["reason"].startswith('meta rule "test rule": pause (matched')
    assert_safe(plan, RULE_ONLY, last_changes=last)


def test_min_budget_binds_a_decrease():
    # MATCHED_ONLY with a1 worth nothing: target 0. a1 has 1.10 EUR, min 1.00: it may give 0.10.
    r = rule(EVERYONE, {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS})
    ents = entities(("a1", "r", 110), ("a2", "r", 10_000))
    metrics = roas(a1=0.0, a2=2.0).with_columns(pl.lit(1.0).alias("spent"))
    no_minimum_move = config(rule_pool(), min_move=0.0, min_move_pct=0.0)
    plan = plan_pool_with_rule("r", ents, metrics, r, no_minimum_move, as_of=AS_OF)
    rows = by_id(plan)
    assert rows["a1"]["new_budget"] == 100 and rows["a1"]["target_budget"] == 0
    assert "min budget 1.00 EUR binds" in rows["a1"]["reason"]
    assert rows["a2"]["new_budget"] == 10_010
    assert_safe(plan, no_minimum_move)


def test_a_rule_over_an_uncovered_preset_fails_loudly():
    r = rule(
        [
            {"field": "time_preset", "value": "LAST_7D", "operator": "EQUAL"},
            {"field": "spent", "value": 10, "operator": "GREATER_THAN"},
        ],
        {"type": "EVEN"},
    )
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000))
    metrics = roas(a1=1.0, a2=2.0).with_columns(pl.lit(5_000.0).alias("spent"))
    # The plain `spent` is the 72 h window: a 7-day rule must not read it.
    with pytest.raises(RuleError, match="last_7d__spent"):
        plan_pool_with_rule("r", ents, metrics, r, RULE_ONLY, as_of=AS_OF)


# --------------------------------------------------------------- plan_with_policies


def scores(**by_entity: float) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"entity_id": e, "as_of": AS_OF, "status": "scored", "score": s}
            for e, s in by_entity.items()
        ],
        schema=contracts.SCORES,
    )


def actions(*rows: tuple[str, str, float | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"entity_id": e, "action": a, "pct": p, "trigger": f"{a}_trigger", "as_of": AS_OF}
            for e, a, p in rows
        ],
        schema=contracts.ACTIONS,
    )


def roas_windows(**by_adset: float) -> pl.DataFrame:
    """72 h windows with spend 100.00 and the given ROAS."""
    return windows({a: {"spend": 100.0, "purchase_value": 100.0 * v} for a, v in by_adset.items()})


def test_mixed_config_one_plan_id_every_guard_and_pools_keep_their_money(tmp_path):
    rule_file = tmp_path / "share.json"
    rule_file.write_text(
        json.dumps(
            {
                "name": "share by ROAS",
                "evaluation_spec": {
                    "evaluation_type": "SCHEDULE",
                    "filters": [
                        {"field": "time_preset", "value": "LAST_3D", "operator": "EQUAL"},
                        {"field": "spent", "value": 0, "operator": "GREATER_THAN"},
                    ],
                },
                "execution_spec": {
                    "execution_type": "REBALANCE_BUDGET",
                    "execution_options": [
                        {
                            "field": "rebalance_spec",
                            "value": {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS},
                            "operator": "EQUAL",
                        }
                    ],
                },
            }
        )
    )
    cfg = config(composite_pool("comp"), rule_pool("r", meta_rule=str(rule_file)))
    ents = entities(
        ("k1", "comp", 10_000), ("k2", "comp", 10_000), ("a1", "r", 10_000), ("a2", "r", 10_000)
    )
    sc = scores(k1=0.40, k2=0.50, a1=0.95, a2=0.95)
    # k1's decrease has no recipient in its own pool; a1's composite increase would take it
    # if the composite planner saw the rule pool — it must not.
    acts = actions(("k1", "decrease", 25.0), ("a1", "increase", 15.0))
    w = roas_windows(a1=3.0, a2=1.0, k1=1.0, k2=1.0)
    plan = plan_with_policies(ents, sc, acts, cfg, windows=w, as_of=AS_OF)
    rows = by_id(plan)
    assert plan["plan_id"].n_unique() == 1 and plan.height == 4
    assert plan["entity_id"].to_list() == ["k1", "k2", "a1", "a2"]  # pool, then entity order
    assert rows["k1"]["delta"] == rows["k2"]["delta"] == 0  # nothing crosses into pool r
    assert (rows["a1"]["new_budget"], rows["a2"]["new_budget"]) == (11_500, 8_500)
    assert rows["a1"]["reason"].startswith('meta rule "share by ROAS": increase to 150.00 EUR')
    assert_safe(plan, cfg, entities=ents)
    # Same inputs, same plan id; another as_of, another id.
    again = plan_with_policies(ents, sc, acts, cfg, windows=w, as_of=AS_OF)
    assert again["plan_id"][0] == plan["plan_id"][0]
    assert plan["plan_id"][0].startswith("plan-20261030-0000-")


def test_given_rules_win_over_the_config_path():
    cfg = config(rule_pool("r", meta_rule="/nonexistent/rule.json"))
    ents = entities(("a1", "r", 10_000), ("a2", "r", 10_000))
    r = rule(EVERYONE, {"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS})
    plan = plan_with_policies(
        ents,
        scores(),
        actions(),
        cfg,
        windows=roas_windows(a1=1.0, a2=3.0),
        as_of=AS_OF,
        rules={"r": r},
    )
    assert by_id(plan)["a2"]["new_budget"] == 11_500
    with pytest.raises(RuleError, match="cannot read rule file"):
        plan_with_policies(ents, scores(), actions(), cfg, windows=roas_windows(), as_of=AS_OF)


# ------------------------------------------------------------------------- properties

# The two types that move money come up more often; EVEN / PROPORTIONAL only pause.
RULE_SPECS = [
    {"type": "EVEN"},
    {"type": "PROPORTIONAL", **BY_ROAS},
    {"type": "INVERSE_PROPORTIONAL", "target_field": "cost_per_result"},
    *[{"type": "NO_PAUSE_PROPORTIONAL", **BY_ROAS}] * 2,
    *[{"type": "MATCHED_ONLY_PROPORTIONAL", **BY_ROAS}] * 2,
    {"type": "MATCHED_ONLY_PROPORTIONAL", "target_field": "cost_per_result", "is_inverse": True},
]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    # Half the examples are "busy": every ad set active, unlocked, unchanged and with
    # Insights, so the rule moves money; the other half mix in every reason to hold.
    busy = draw(st.booleans())
    n = draw(st.integers(2 if busy else 1, 8))
    # An ad set outside every pool delivered, so the 72 h window exists even when none of the
    # pools' ad sets has Insights (a frame without any window has no metric columns at all).
    ents, window_rows, change_rows = [], {"ghost": {"spend": 1.0}}, []
    for i in range(n):
        entity_id = f"a{i}"
        ents.append(
            {
                "entity_id": entity_id,
                "entity_type": "adset",
                "campaign_id": draw(st.sampled_from(["c1", "c2"])),
                "name": entity_id,
                "status": "ACTIVE" if busy else draw(st.sampled_from(["ACTIVE"] * 4 + ["PAUSED"])),
                "budget_type": "daily",
                "daily_budget": draw(st.integers(0, 2_000_000) | st.integers(1_000, 20_000)),
                "currency": "EUR",
                "pool": draw(st.sampled_from(["r", "r", "r", "comp"])),
                "locked": not busy and draw(st.integers(0, 5)) == 0,
            }
        )
        if busy or draw(st.integers(0, 4)):
            spend = draw(st.floats(0, 5_000) | st.floats(10, 500))
            window_rows[entity_id] = {
                "spend": spend,
                "purchase_value": spend * draw(st.floats(0, 6) | st.sampled_from([0.8, 2.5, 5.0])),
                "conversions": float(draw(st.integers(0, 50))),
                "impressions": draw(st.integers(0, 100_000)),
            }
        if not busy and draw(st.integers(0, 2)) == 0:
            change_rows.append((entity_id, draw(st.floats(-0.5, 24.0)), draw(st.integers(0, 5))))
    cap = draw(st.sampled_from([5.0, 12.5, 15.0, 20.0]))
    cfg = config(
        composite_pool("comp"),
        rule_pool("r", tier=draw(st.integers(1, 2))),
        learning_cap_pct=cap,
        min_adset_budget=draw(st.sampled_from([0.0, 1.0, 50.0])),
        min_change_interval_hours=draw(st.sampled_from([0.0, 6.0])),
    )
    spec = dict(draw(st.sampled_from(RULE_SPECS)))
    if "target_field" in spec and draw(st.booleans()):
        spec["target_count"] = draw(st.integers(1, 4))
    spec["is_cross_campaign"] = draw(st.booleans())
    op = draw(st.sampled_from(["LESS_THAN", "GREATER_THAN"]))
    threshold = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 4.0]))
    r = rule([{"field": "website_purchase_roas", "value": threshold, "operator": op}], spec)
    scored = {e["entity_id"]: draw(st.floats(0, 1)) for e in ents}
    acts = [
        (e["entity_id"], kind, 20.0)
        for e in ents
        if (kind := draw(st.sampled_from(["increase", "decrease", None]))) is not None
    ]
    return {
        "config": cfg,
        "entities": pl.DataFrame(ents, schema=contracts.AD_ENTITIES),
        "scores": scores(**scored),
        "actions": actions(*acts),
        "windows": windows(window_rows),
        "last_changes": changes(*change_rows),
        "rule": r,
    }


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_every_guard_holds_and_rule_pools_conserve_money(s: dict[str, Any]):
    cfg = s["config"]
    plan = plan_with_policies(
        s["entities"],
        s["scores"],
        s["actions"],
        cfg,
        windows=s["windows"],
        as_of=AS_OF,
        last_changes=s["last_changes"],
        rules={"r": s["rule"]},
    )
    assert plan.schema == pl.Schema(contracts.PLAN)
    assert sorted(plan["entity_id"]) == sorted(s["entities"]["entity_id"])
    assert plan["plan_id"].n_unique() <= 1
    spending = plan.filter(~pl.col("pause"))
    assert spending["new_budget"].sum() == plan["old_budget"].sum()
    broken = {
        k: v.to_dicts()
        for k, v in plan_violations(
            plan, cfg, last_changes=s["last_changes"], as_of=AS_OF, entities=s["entities"]
        ).items()
        if v.height
    }
    assert not broken, broken
    rows = plan.filter(pl.col("pool") == "r")
    assert rows.filter(~pl.col("pause"))["new_budget"].sum() == rows["old_budget"].sum()
    cap = cfg.settings.learning_cap_pct
    for row in rows.iter_rows(named=True):
        old, new = row["old_budget"], row["new_budget"]
        assert abs(new - old) * 100 <= old * cap
        assert row["reason"].startswith('meta rule "test rule": ')
        assert (row["action"] == "pause") == row["pause"]
        if row["pause"] or row["action"] == "hold":
            assert new == old
        if row["target_budget"] != new:  # a glide path: the step went the target's way
            assert (row["target_budget"] - old) * (new - old) > 0
    ents = {e["entity_id"]: e for e in s["entities"].iter_rows(named=True)}
    for row in rows.filter(pl.col("delta") != 0).iter_rows(named=True):
        ent = ents[row["entity_id"]]
        assert ent["status"] == "ACTIVE" and not ent["locked"]
