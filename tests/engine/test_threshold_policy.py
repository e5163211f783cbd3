"""The seed's threshold policy through the allocator, on small hand-made accounts with worked
numbers (minor units, EUR)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.guards import plan_violations
from budget_pipeline.engine.plan_text import plan_summary_markdown, pool_totals
from budget_pipeline.engine.policy import plan_with_policies

AS_OF = datetime(2026, 10, 30, 0, 0)


def plan_rebalance(entities, scores, actions, config, **kwargs) -> pl.DataFrame:
    """The plan of ``composite`` pools (the seed's thresholds): triggers → one allocation."""
    return plan_with_policies(entities, scores, actions, config, **kwargs)


def config(*pools: tuple[str, int, float, float], **settings) -> PoolsConfig:
    """``(name, tier, floor, ceiling)`` in major units per day."""
    return PoolsConfig(
        settings=settings,
        pools=[
            {"name": n, "tier": t, "floor": f, "ceiling": c, "policy": "composite"}
            for n, t, f, c in pools
        ],
    )


OPEN = config(("a", 1, 0, 100_000))  # one pool whose bounds never bind
TWO_TIERS = config(("a", 1, 0, 100_000), ("b", 2, 0, 100_000))


def entities(*rows: tuple, **overrides) -> pl.DataFrame:
    """Rows ``(entity_id, pool, daily_budget)``; every ad set in its own campaign ``c_<id>``."""
    records = []
    for entity_id, pool, budget in rows:
        record = {
            "entity_id": entity_id,
            "entity_type": "adset",
            "campaign_id": f"c_{entity_id}",
            "name": entity_id,
            "status": "ACTIVE",
            "budget_type": "daily",
            "daily_budget": budget,
            "lifetime_budget": None,
            "budget_remaining": None,
            "end_date": None,
            "currency": "EUR",
            "pool": pool,
            "locked": False,
        }
        record.update(overrides.get(entity_id, {}))
        records.append(record)
    return pl.DataFrame(records, schema=contracts.AD_ENTITIES)


def scores(**by_entity: float | None) -> pl.DataFrame:
    """Scores at AS_OF; ``None`` means insufficient_data."""
    return pl.DataFrame(
        [
            {
                "entity_id": e,
                "entity_type": "adset",
                "campaign_id": f"c_{e}",
                "as_of": AS_OF,
                "status": "scored" if s is not None else "insufficient_data",
                "score": s,
            }
            for e, s in by_entity.items()
        ],
        schema=contracts.SCORES,
    )


def actions(*rows: tuple) -> pl.DataFrame:
    """Rows ``(entity_id, action, pct)``; the trigger is named after the action."""
    return pl.DataFrame(
        [
            {"entity_id": e, "action": a, "pct": p, "trigger": f"{a}_trigger", "as_of": AS_OF}
            for e, a, p in rows
        ],
        schema=contracts.ACTIONS,
    )


def by_id(plan: pl.DataFrame) -> dict[str, dict]:
    return {row["entity_id"]: row for row in plan.iter_rows(named=True)}


def assert_safe(plan: pl.DataFrame, cfg: PoolsConfig, **kwargs) -> None:
    assert plan.schema == pl.Schema(contracts.PLAN)
    # money is conserved among the budgets that spend: a paused holder's went to active ones
    assert plan.filter(~pl.col("pause"))["new_budget"].sum() == plan["old_budget"].sum()
    broken = {
        k: v for k, v in plan_violations(plan, cfg, as_of=AS_OF, **kwargs).items() if v.height
    }
    assert not broken, broken


def test_worked_example_decrease_is_capped_and_funds_the_increase():
    # 100.00 / 100.00 EUR; decrease 25 % wants 75.00 but one step is capped at 15 % = 15.00.
    plan = plan_rebalance(
        entities(("down", "a", 10_000), ("up", "a", 10_000)),
        scores(down=0.40, up=0.90),
        actions(("down", "decrease", 25.0), ("up", "increase", 15.0)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["down"]["new_budget"] == 8_500
    assert rows["down"]["delta"] == -1_500
    assert rows["down"]["target_budget"] == 7_500  # the glide path continues next cycles
    assert rows["down"]["action"] == "decrease"
    assert "glide path: one step is at most 15 %" in rows["down"]["reason"]
    assert "score 0.40" in rows["down"]["reason"]
    assert rows["down"]["trigger"] == "decrease_trigger"
    assert rows["up"]["new_budget"] == 11_500
    assert rows["up"]["target_budget"] == 11_500
    assert rows["up"]["action"] == "increase"
    assert rows["up"]["score"] == 0.90
    assert_safe(plan, OPEN)


def test_freed_money_goes_to_the_best_scoring_recipient_first_and_crumbs_are_not_made():
    # The donor frees 10 % of 100.00 = 10.00. r2 (0.95) wants 7.50 and gets it first; r1 (0.80)
    # would get the 2.50 left, under its minimum move (3 % of 100.00): it sits the cycle out and
    # the donor gives 7.50.
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r1", "a", 10_000), ("r2", "a", 5_000)),
        scores(d=0.45, r1=0.80, r2=0.95),
        actions(("d", "decrease", 10.0), ("r1", "increase", 15.0), ("r2", "increase", 15.0)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert (rows["d"]["delta"], rows["r2"]["delta"], rows["r1"]["delta"]) == (-750, 750, 0)
    assert "minimum move of 3.00 EUR" in rows["r1"]["reason"]
    assert "shrunk to what recipients could take" in rows["d"]["reason"]
    assert_safe(plan, OPEN)


def test_a_euro_is_not_split_into_crumbs():
    # 10.00 decreased 10 % frees 1.00 for three recipients of 100.00: any share is under their
    # minimum move (3.00), so nothing moves; without a minimum move the best one takes it all.
    ents = entities(
        ("d", "a", 1_000), ("r1", "a", 10_000), ("r2", "a", 10_000), ("r3", "a", 10_000)
    )
    acts = actions(
        ("d", "decrease", 10.0),
        ("r1", "increase", 15.0),
        ("r2", "increase", 15.0),
        ("r3", "increase", 15.0),
    )
    sc = scores(d=0.4, r1=0.9, r2=0.95, r3=0.9)
    rows = by_id(plan_rebalance(ents, sc, acts, OPEN, as_of=AS_OF))
    assert all(rows[e]["delta"] == 0 for e in ("d", "r1", "r2", "r3"))
    no_minimum = config(("a", 1, 0, 100_000), min_move=0.0, min_move_pct=0.0)
    plan = plan_rebalance(ents, sc, acts, no_minimum, as_of=AS_OF)
    rows = by_id(plan)
    assert rows["d"]["delta"] == -100
    assert [rows[r]["delta"] for r in ("r1", "r2", "r3")] == [0, 100, 0]
    assert_safe(plan, no_minimum)


def test_donations_shrink_to_what_recipients_can_take():
    # Donor could free 15.00; the only recipient (50.00, +10 %) takes 5.00; nobody absorbs.
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r", "a", 5_000), ("idle", "a", 5_000)),
        scores(d=0.4, r=0.9, idle=0.45),
        actions(("d", "decrease", 25.0), ("r", "increase", 10.0)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["d"]["delta"] == -500
    assert "shrunk to what recipients could take" in rows["d"]["reason"]
    assert rows["r"]["delta"] == 500
    assert rows["idle"]["action"] == "hold"
    assert_safe(plan, OPEN)


def test_without_recipients_freed_budget_is_absorbed_by_scores_above_half():
    # 200.00 decreased 25 % frees 30.00 (cap). Absorbers are served by score: a1 (0.9) takes
    # its cap of 15.00, b1 (0.6) the other 15.00 (its cap is 30.00).
    plan = plan_rebalance(
        entities(("d", "a", 20_000), ("a1", "a", 10_000), ("b1", "a", 20_000), ("low", "a", 9_000)),
        scores(d=0.4, a1=0.9, b1=0.6, low=0.5),
        actions(("d", "decrease", 25.0)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["d"]["delta"] == -3_000
    assert rows["a1"]["delta"] == 1_500
    assert rows["b1"]["delta"] == 1_500
    assert rows["low"]["delta"] == 0  # exactly on baseline absorbs nothing
    assert "absorb freed budget" in rows["a1"]["reason"]
    assert rows["a1"]["action"] == "increase"
    assert rows["a1"]["trigger"] is None
    assert_safe(plan, OPEN)


def test_increase_without_donor_is_held():
    plan = plan_rebalance(
        entities(("r", "a", 10_000), ("x", "a", 10_000)),
        scores(r=0.95, x=0.5),
        actions(("r", "increase", 15.0)),
        OPEN,
        as_of=AS_OF,
    )
    row = by_id(plan)["r"]
    assert (row["action"], row["delta"], row["target_budget"]) == ("hold", 0, 10_000)
    assert "no donor" in row["reason"]
    assert "increase_trigger" in row["reason"]


def test_cross_tier_move_needs_the_score_margin():
    ents = entities(("d", "a", 10_000), ("r", "b", 10_000))
    acts = actions(("d", "decrease", 10.0), ("r", "increase", 15.0))
    honoured = by_id(plan_rebalance(ents, scores(d=0.50, r=0.95), acts, TWO_TIERS, as_of=AS_OF))
    assert (honoured["d"]["delta"], honoured["r"]["delta"]) == (-1_000, 1_000)
    assert "other tiers" in honoured["r"]["reason"]

    at_margin = by_id(plan_rebalance(ents, scores(d=0.80, r=0.90), acts, TWO_TIERS, as_of=AS_OF))
    assert at_margin["r"]["delta"] == 1_000  # 0.90 − 0.80 == 0.10 counts, float noise aside

    refused = by_id(plan_rebalance(ents, scores(d=0.50, r=0.55), acts, TWO_TIERS, as_of=AS_OF))
    assert refused["d"]["delta"] == refused["r"]["delta"] == 0
    assert "not 0.1 worse (cross-tier margin)" in refused["r"]["reason"]
    assert "no donor" in refused["r"]["reason"]
    assert "no recipient" in refused["d"]["reason"]

    wider = config(("a", 1, 0, 100_000), ("b", 2, 0, 100_000), cross_tier_margin=0.5)
    too_close = by_id(plan_rebalance(ents, scores(d=0.50, r=0.95), acts, wider, as_of=AS_OF))
    assert too_close["r"]["delta"] == 0


def test_same_pool_then_same_tier_before_other_tiers():
    cfg = config(("a", 1, 0, 100_000), ("a2", 1, 0, 100_000), ("b", 2, 0, 100_000))
    # d frees 15.00; same-pool r_a wants 10.00, same-tier r_a2 wants 15.00, r_b (tier 2) 15.00.
    plan = plan_rebalance(
        entities(
            ("d", "a", 10_000), ("r_a", "a", 10_000), ("r_a2", "a2", 10_000), ("r_b", "b", 10_000)
        ),
        scores(d=0.3, r_a=0.9, r_a2=0.9, r_b=0.99),
        actions(
            ("d", "decrease", 25.0),
            ("r_a", "increase", 10.0),
            ("r_a2", "increase", 15.0),
            ("r_b", "increase", 15.0),
        ),
        cfg,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["r_a"]["delta"] == 1_000
    assert rows["r_a2"]["delta"] == 500
    assert rows["r_b"]["delta"] == 0
    assert "same pool" in rows["r_a"]["reason"]
    assert "other pools of its tier" in rows["r_a2"]["reason"]
    assert_safe(plan, cfg)


def test_floor_binds_cross_pool_outflow():
    # Pool a holds 200.00 with floor 190.00: only 10.00 of the 15.00 freed may leave it.
    cfg = config(("a", 1, 190, 1_000), ("b", 1, 0, 1_000))
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("x", "a", 10_000), ("r", "b", 10_000)),
        scores(d=0.3, x=0.45, r=0.9),
        actions(("d", "decrease", 25.0), ("r", "increase", 15.0)),
        cfg,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["d"]["delta"] == -1_000
    assert rows["r"]["delta"] == 1_000
    assert "pool floor 190.00 EUR binds" in rows["d"]["reason"]
    totals = {r["pool"]: r for r in pool_totals(plan).iter_rows(named=True)}
    assert totals["a"]["after"] == 19_000
    assert_safe(plan, cfg)


def test_ceiling_binds_cross_pool_inflow():
    # Pool b holds 100.00 with ceiling 104.00: only 4.00 may arrive.
    cfg = config(("a", 1, 0, 1_000), ("b", 1, 0, 104))
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r", "b", 10_000)),
        scores(d=0.3, r=0.9),
        actions(("d", "decrease", 25.0), ("r", "increase", 15.0)),
        cfg,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert (rows["d"]["delta"], rows["r"]["delta"]) == (-400, 400)
    assert "pool ceiling 104.00 EUR binds" in rows["r"]["reason"]
    assert_safe(plan, cfg)


def test_pool_below_its_floor_keeps_its_money_but_may_move_inside():
    cfg = config(("a", 1, 500, 1_000), ("b", 1, 0, 1_000))
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("ra", "a", 10_000), ("rb", "b", 10_000)),
        scores(d=0.3, ra=0.9, rb=0.99),
        actions(("d", "decrease", 25.0), ("ra", "increase", 5.0), ("rb", "increase", 15.0)),
        cfg,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert (rows["d"]["delta"], rows["ra"]["delta"], rows["rb"]["delta"]) == (-500, 500, 0)
    assert_safe(plan, cfg)


def test_locked_entities_never_move():
    cfg = PoolsConfig(
        pools=[
            {
                "name": "a",
                "tier": 1,
                "floor": 0,
                "ceiling": 10_000,
                "locked": ["c_lk"],
                "policy": "composite",
            }
        ]
    )
    plan = plan_rebalance(
        entities(
            ("lk", "a", 10_000),  # locked through its campaign id in the config
            ("flag", "a", 10_000),
            ("d", "a", 10_000),
            ("r", "a", 10_000),
            flag={"locked": True},  # locked in ad_entities
        ),
        scores(lk=0.2, flag=0.99, d=0.3, r=0.9),
        actions(
            ("lk", "pause", None),
            ("flag", "increase", 15.0),
            ("d", "decrease", 25.0),
            ("r", "increase", 15.0),
        ),
        cfg,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    for held in ("lk", "flag"):
        assert rows[held]["delta"] == 0
        assert rows[held]["pause"] is False
        assert rows[held]["action"] == "hold"
        assert "locked" in rows[held]["reason"]
    assert rows["r"]["delta"] == 1_500
    assert_safe(plan, cfg, entities=entities(("flag", "a", 0), flag={"locked": True}))


def test_entities_cooling_down_never_move():
    last = pl.DataFrame(
        [
            {
                "entity_id": "recent",
                "changed_at": AS_OF - timedelta(hours=2),
                "changes_last_hour": 0,
            },
            {"entity_id": "busy", "changed_at": AS_OF - timedelta(hours=7), "changes_last_hour": 4},
            {"entity_id": "ok", "changed_at": AS_OF - timedelta(hours=6), "changes_last_hour": 3},
        ],
        schema=contracts.LAST_CHANGES,
    )
    plan = plan_rebalance(
        entities(("recent", "a", 10_000), ("busy", "a", 10_000), ("ok", "a", 10_000)),
        scores(recent=0.3, busy=0.3, ok=0.9),
        actions(("recent", "decrease", 25.0), ("busy", "pause", None), ("ok", "increase", 15.0)),
        OPEN,
        as_of=AS_OF,
        last_changes=last,
    )
    rows = by_id(plan)
    assert rows["recent"]["delta"] == 0 and rows["recent"]["action"] == "hold"
    assert "min interval" in rows["recent"]["reason"]
    assert rows["busy"]["pause"] is False
    assert "4 changes in the last hour (max 4 per hour)" in rows["busy"]["reason"]
    assert "no donor" in rows["ok"]["reason"]  # exactly 6 h ago may move, but nobody frees money
    assert_safe(plan, OPEN, last_changes=last)


def test_min_budget_binds_the_decrease():
    # 11.00 with a 10.00 minimum: the cap allows 1.65, the minimum only 1.00.
    mins = pl.DataFrame({"entity_id": ["d"], "min_budget": [1_000]})
    no_minimum_move = config(("a", 1, 0, 100_000), min_move=0.0, min_move_pct=0.0)
    plan = plan_rebalance(
        entities(("d", "a", 1_100), ("r", "a", 10_000)),
        scores(d=0.3, r=0.9),
        actions(("d", "decrease", 25.0), ("r", "increase", 15.0)),
        no_minimum_move,
        as_of=AS_OF,
        min_budgets=mins,
    )
    rows = by_id(plan)
    assert rows["d"]["new_budget"] == 1_000
    assert rows["d"]["target_budget"] == 825
    assert "min budget 10.00 EUR binds" in rows["d"]["reason"]
    assert rows["r"]["delta"] == 100
    assert_safe(plan, no_minimum_move, min_budgets=mins)


def test_default_min_budget_comes_from_settings():
    cfg = config(("a", 1, 0, 100_000), min_adset_budget=99.0, min_move=0.0, min_move_pct=0.0)
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r", "a", 10_000)),
        scores(d=0.3, r=0.9),
        actions(("d", "decrease", 25.0), ("r", "increase", 15.0)),
        cfg,
        as_of=AS_OF,
    )
    assert by_id(plan)["d"]["new_budget"] == 9_900


def test_a_pause_frees_its_money_to_active_ad_sets_and_wins_over_a_decrease():
    # p (50.00) is paused; five absorbers of 100.00 each take up to 15.00: 50.00 fits.
    absorbers = [(f"r{i}", "a", 10_000) for i in range(5)]
    plan = plan_rebalance(
        entities(("p", "a", 5_000), *absorbers),
        scores(p=0.2, **{f"r{i}": 0.9 - i / 100 for i in range(5)}),
        actions(("p", "decrease", 25.0), ("p", "pause", None), ("p", "alert", None)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["p"]["pause"] is True and rows["p"]["action"] == "pause"
    assert rows["p"]["new_budget"] == rows["p"]["old_budget"] == 5_000  # kept while paused
    assert rows["p"]["trigger"] == "pause_trigger"
    assert "alert (alert_trigger)" in rows["p"]["reason"]
    assert "decrease 25 % (decrease_trigger)" in rows["p"]["reason"]
    assert "goes to active ad sets" in rows["p"]["reason"]
    # the pool keeps spending its budget: the paused 50.00 now funds the best absorbers
    assert [rows[f"r{i}"]["delta"] for i in range(5)] == [1_500, 1_500, 1_500, 500, 0]
    spending = plan.filter(~pl.col("pause"))["new_budget"].sum()
    assert spending == plan["old_budget"].sum()
    assert_safe(plan, OPEN)


def test_a_pause_whose_money_cannot_all_be_placed_waits_and_cuts_one_step():
    plan = plan_rebalance(
        entities(("p", "a", 10_000), ("r", "a", 10_000)),
        scores(p=0.2, r=0.9),
        actions(("p", "pause", None)),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["p"]["pause"] is False
    assert (rows["p"]["delta"], rows["r"]["delta"]) == (-1_500, 1_500)
    assert rows["p"]["target_budget"] == 0
    assert "pause waits" in rows["p"]["reason"]
    assert_safe(plan, OPEN)


def test_largest_decrease_wins_and_flags_are_named():
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r", "a", 10_000)),
        scores(d=0.3, r=0.9),
        actions(
            ("d", "decrease", 5.0),
            ("d", "decrease", 10.0),
            ("d", "flag_creative", None),
            ("r", "increase", 15.0),
        ),
        OPEN,
        as_of=AS_OF,
    )
    rows = by_id(plan)
    assert rows["d"]["delta"] == -1_000
    assert rows["d"]["target_budget"] == 9_000
    assert "flag_creative" in rows["d"]["reason"]


def test_unscored_paused_and_learning_entities_hold():
    cfg = config(("a", 1, 0, 100_000), skip_learning=True)
    learning = pl.DataFrame({"entity_id": ["learn"], "in_learning": [True]})
    ents = entities(
        ("new", "a", 10_000),
        ("off", "a", 10_000),
        ("learn", "a", 10_000),
        ("d", "a", 10_000),
        off={"status": "PAUSED"},
    )
    acts = actions(
        ("new", "increase", 15.0), ("off", "increase", 15.0), ("learn", "increase", 15.0),
        ("d", "decrease", 25.0),
    )  # fmt: skip
    sc = scores(new=None, off=0.9, learn=0.9, d=0.3)
    rows = by_id(plan_rebalance(ents, sc, acts, cfg, as_of=AS_OF, in_learning=learning))
    assert "unscored (insufficient_data)" in rows["new"]["reason"]
    assert "status PAUSED" in rows["off"]["reason"]
    assert "in learning phase" in rows["learn"]["reason"]
    assert all(rows[e]["delta"] == 0 for e in ("new", "off", "learn", "d"))
    # Without skip_learning the learning flag is ignored and the learner is funded.
    rows = by_id(plan_rebalance(ents, sc, acts, OPEN, as_of=AS_OF, in_learning=learning))
    assert rows["learn"]["delta"] == 1_500


def test_budget_holders_are_daily_adsets_and_cbo_campaigns():
    ents = entities(
        ("cbo", "a", 10_000),
        ("cbo_adset", "a", None),
        ("life", "a", None),
        ("nopool", None, 10_000),
        cbo={"entity_type": "campaign", "campaign_id": "cbo"},
        cbo_adset={"campaign_id": "cbo", "budget_type": None},
        life={"budget_type": "lifetime", "lifetime_budget": 100_000, "budget_remaining": 5_000},
    )
    plan = plan_rebalance(ents, scores(cbo=0.5), actions(), OPEN, as_of=AS_OF)
    assert plan["entity_id"].to_list() == ["cbo"]
    assert plan["entity_type"].to_list() == ["campaign"]


def test_plan_id_is_stable_and_depends_on_the_moves():
    ents = entities(("d", "a", 10_000), ("r", "a", 10_000))
    acts = actions(("d", "decrease", 25.0), ("r", "increase", 15.0))
    first = plan_rebalance(ents, scores(d=0.3, r=0.9), acts, OPEN, as_of=AS_OF)
    again = plan_rebalance(ents.reverse(), scores(r=0.9, d=0.3), acts.reverse(), OPEN, as_of=AS_OF)
    assert first.equals(again)
    plan_id = first["plan_id"][0]
    assert re.fullmatch(r"plan-20261030-0000-[0-9a-f]{8}", plan_id)
    assert first["plan_id"].n_unique() == 1
    later = plan_rebalance(ents, scores(d=0.3, r=0.9), acts, OPEN, as_of=AS_OF + timedelta(hours=1))
    other = plan_rebalance(ents, scores(d=0.3, r=0.9), acts[1:], OPEN, as_of=AS_OF)
    assert len({plan_id, later["plan_id"][0], other["plan_id"][0]}) == 3


def test_pool_totals_and_summary():
    plan = plan_rebalance(
        entities(("d", "a", 10_000), ("r", "b", 10_000), ("x", "b", 123_456)),
        scores(d=0.3, r=0.9, x=0.45),
        actions(("d", "decrease", 25.0), ("r", "increase", 15.0)),
        TWO_TIERS,
        as_of=AS_OF,
    )
    assert pool_totals(plan).rows() == [("a", 1, 10_000, 8_500), ("b", 2, 133_456, 134_956)]
    text = plan_summary_markdown(plan, "EUR")
    assert "| a | 1 | 100.00 EUR | 85.00 EUR | -15.00 EUR |" in text
    assert "| b | 2 | 1,334.56 EUR | 1,349.56 EUR | +15.00 EUR |" in text
    assert "| d | a | decrease | 100.00 EUR | 85.00 EUR | -15.00 EUR | 75.00 EUR |" in text
    assert plan["plan_id"][0] in text
    assert "x |" not in text  # holds without a trigger are not listed


def test_empty_and_malformed_inputs():
    empty = plan_rebalance(entities(), scores(), actions(), OPEN, as_of=AS_OF)
    assert empty.height == 0 and empty.schema == pl.Schema(contracts.PLAN)
    with pytest.raises(ValueError, match=r"'pool'.*nowhere"):
        plan_rebalance(entities(("x", "nowhere", 100)), scores(), actions(), OPEN, as_of=AS_OF)
    with pytest.raises(ValueError, match=r"'daily_budget'.*'x'"):
        plan_rebalance(entities(("x", "a", None)), scores(), actions(), OPEN, as_of=AS_OF)
    with pytest.raises(ValueError, match=r"'pct'.*'x'"):
        plan_rebalance(
            entities(("x", "a", 100)), scores(x=0.9), actions(("x", "increase", None)), OPEN,
            as_of=AS_OF,
        )  # fmt: skip
