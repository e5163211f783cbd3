"""The allocator on hand-made proposals: it knows no policy, only targets, merits and guards."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import PROPOSALS, allocate
from budget_pipeline.engine.guards import plan_violations

AS_OF = datetime(2026, 10, 30)


def config(*pools: dict, **settings) -> PoolsConfig:
    return PoolsConfig(settings=settings, pools=list(pools))


def pool(name: str, tier: int = 1, floor: float = 0, ceiling: float = 100_000, **extra) -> dict:
    return {"name": name, "tier": tier, "floor": floor, "ceiling": ceiling, **extra}


def entities(*rows: tuple) -> pl.DataFrame:
    """``(entity_id, pool, daily_budget)`` ad sets, each in its own campaign."""
    return pl.DataFrame(
        [
            {"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "name": e,
             "status": "ACTIVE", "budget_type": "daily", "daily_budget": b, "currency": "EUR",
             "pool": p, "locked": False}
            for e, p, b in rows
        ],
        schema=contracts.AD_ENTITIES,
    )  # fmt: skip


def proposals(*rows: tuple) -> pl.DataFrame:
    """``(entity_id, target_budget or None, merit)``; ``"pause"`` as target proposes a pause."""
    return pl.DataFrame(
        [
            {"entity_id": e, "target_budget": None if t == "pause" else t, "pause": t == "pause",
             "merit": m, "trigger": "test", "score": None, "why": f"test wants {t}"}
            for e, t, m in rows
        ],
        schema=PROPOSALS,
    )  # fmt: skip


def deltas(plan: pl.DataFrame) -> dict[str, int]:
    return dict(plan.select("entity_id", "delta").iter_rows())


def safe(plan: pl.DataFrame, cfg: PoolsConfig, **kwargs) -> None:
    spending = plan.filter(~pl.col("pause"))["new_budget"].sum()
    assert spending == plan["old_budget"].sum()
    broken = {
        k: v for k, v in plan_violations(plan, cfg, as_of=AS_OF, **kwargs).items() if v.height
    }
    assert broken == {}


def test_a_live_pools_money_never_funds_a_pool_that_only_observes():
    """Review finding: the live donor's cut would land, the observe recipient's raise would
    not, and the account would lose the money."""
    cfg = config(pool("live", mode="live"), pool("watch"))
    ents = entities(("d", "live", 10_000), ("r", "watch", 10_000))
    props = proposals(("d", 8_000, 0.1), ("r", 12_000, 0.9))
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    assert deltas(plan) == {"d": 0, "r": 0}
    assert "no recipient" in plan.filter(pl.col("entity_id") == "d")["reason"][0]
    # both live, or the kill switch turning both to observe: the money moves
    both = config(pool("live", mode="live"), pool("watch", mode="live"))
    assert deltas(allocate(ents, props, both, as_of=AS_OF)) == {"d": -1_500, "r": 1_500}
    killed = config(pool("live", mode="live"), pool("watch"), kill_switch=True)
    assert deltas(allocate(ents, props, killed, as_of=AS_OF)) == {"d": -1_500, "r": 1_500}


def test_a_closed_pools_money_stays_in_it():
    cfg = config(pool("rule"), pool("other"))
    ents = entities(("d", "rule", 10_000), ("r", "other", 10_000), ("k", "rule", 10_000))
    props = proposals(("d", 8_000, 0.1), ("r", 12_000, 0.9))
    plan = allocate(ents, props, cfg, as_of=AS_OF, closed_pools=("rule",))
    assert deltas(plan) == {"d": 0, "k": 0, "r": 0}
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    assert deltas(plan) == {"d": -1_500, "k": 0, "r": 1_500}


def test_equal_merits_share_in_proportion_whatever_the_row_order():
    cfg = config(pool("a"))
    ents = entities(("d", "a", 10_000), ("r1", "a", 20_000), ("r2", "a", 10_000))
    props = proposals(("d", 9_000, 0.0), ("r1", 30_000, 0.5), ("r2", 20_000, 0.5))
    plan = allocate(ents, props, cfg, as_of=AS_OF, scope="x")
    # 10.00 freed, wants 30.00 and 15.00 (capped): 2:1 → 6.67 / 3.33 — and largest remainder
    assert deltas(plan) == {"d": -1_000, "r1": 667, "r2": 333}
    again = allocate(ents.reverse(), props.reverse(), cfg, as_of=AS_OF, scope="x")
    assert again.sort("entity_id").equals(plan.sort("entity_id"))
    safe(plan, cfg)


def test_across_pools_the_floor_and_ceiling_bound_the_flow():
    cfg = config(pool("a", floor=190), pool("b", ceiling=205), min_move=0.0, min_move_pct=0.0)
    ents = entities(("d", "a", 20_000), ("r", "b", 20_000))
    props = proposals(("d", 10_000, 0.0), ("r", 30_000, 1.0))
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    assert deltas(plan) == {"d": -500, "r": 500}  # the ceiling (205.00) binds before the floor
    reasons = dict(plan.select("entity_id", "reason").iter_rows())
    assert "pool ceiling 205.00 EUR binds" in reasons["r"]
    safe(plan, cfg)


def test_across_tiers_only_a_clearly_better_recipient_is_funded():
    cfg = config(pool("a", tier=1), pool("b", tier=2), cross_tier_margin=0.2)
    ents = entities(("d", "a", 10_000), ("r", "b", 10_000))
    close = proposals(("d", 8_000, 0.5), ("r", 12_000, 0.6))
    assert deltas(allocate(ents, close, cfg, as_of=AS_OF)) == {"d": 0, "r": 0}
    clear = proposals(("d", 8_000, 0.5), ("r", 12_000, 0.75))
    assert deltas(allocate(ents, clear, cfg, as_of=AS_OF)) == {"d": -1_500, "r": 1_500}


def test_a_pause_frees_all_its_money_or_waits():
    cfg = config(pool("a"))
    ents = entities(("p", "a", 3_000), ("r1", "a", 10_000), ("r2", "a", 10_000))
    fits = allocate(ents, proposals(("p", "pause", 0.0), ("r1", 20_000, 0.9),
                                    ("r2", 20_000, 0.8)), cfg, as_of=AS_OF)  # fmt: skip
    assert fits.filter(pl.col("entity_id") == "p")["pause"][0]
    assert deltas(fits) == {"p": 0, "r1": 1_500, "r2": 1_500}
    safe(fits, cfg)
    big = entities(("p", "a", 5_000), ("r1", "a", 10_000), ("r2", "a", 10_000))
    waits = allocate(big, proposals(("p", "pause", 0.0), ("r1", 20_000, 0.9),
                                    ("r2", 20_000, 0.8)), cfg, as_of=AS_OF)  # fmt: skip
    row = waits.filter(pl.col("entity_id") == "p").row(0, named=True)
    assert not row["pause"] and row["delta"] == -750 and row["target_budget"] == 0
    assert "pause waits" in row["reason"]
    safe(waits, cfg)


def test_crumbs_are_not_made_and_the_flow_is_recomputed_without_them():
    cfg = config(pool("a"), min_move=2.0, min_move_pct=0.0)
    ents = entities(("d", "a", 10_000), ("r1", "a", 10_000), ("r2", "a", 1_000))
    props = proposals(("d", 9_700, 0.0), ("r1", 20_000, 0.9), ("r2", 2_000, 0.95))
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    # d frees 3.00: r2 (best) would take 1.50 (its cap), under 2.00: it sits out; r1 takes 3.00
    assert deltas(plan) == {"d": -300, "r1": 300, "r2": 0}
    assert "minimum move of 2.00 EUR" in plan.filter(pl.col("entity_id") == "r2")["reason"][0]


def test_guards_hold_what_must_not_move():
    cfg = config(pool("a"), pool("held"), min_change_interval_hours=6)
    ents = entities(
        ("moved_here", "a", 10_000), ("cooling", "a", 10_000), ("ok", "a", 10_000),
        ("thin", "a", 10_000), ("h", "held", 10_000),
    )  # fmt: skip
    last = pl.DataFrame(
        {"entity_id": ["moved_here", "cooling"], "changed_at": [AS_OF, AS_OF - timedelta(hours=2)],
         "changes_last_hour": [1, 0]},
        schema=contracts.LAST_CHANGES,
    )  # fmt: skip
    scores = pl.DataFrame(
        [{"entity_id": e, "as_of": AS_OF, "status": s, "score": 0.5}
         for e, s in (("moved_here", "scored"), ("cooling", "scored"), ("ok", "scored"),
                      ("thin", "insufficient_data"), ("h", "scored"))],
        schema={"entity_id": pl.Utf8, "as_of": pl.Datetime("us"), "status": pl.Utf8,
                "score": pl.Float64},
    ).with_columns(
        **{c: pl.lit(None, t) for c, t in contracts.SCORES.items()
           if c not in ("entity_id", "as_of", "status", "score")}
    )  # fmt: skip
    props = proposals(
        ("moved_here", 8_000, 0.0), ("cooling", 8_000, 0.0), ("thin", 8_000, 0.0),
        ("h", 8_000, 0.0), ("ok", 12_000, 1.0),
    )  # fmt: skip
    plan = allocate(
        ents, props, cfg, as_of=AS_OF, last_changes=last, scores=scores,
        held_pools={"held": "plan X is still being finished in this pool"},
    )  # fmt: skip
    reasons = dict(plan.select("entity_id", "reason").iter_rows())
    assert deltas(plan) == dict.fromkeys(("moved_here", "cooling", "ok", "thin", "h"), 0)
    assert "already moved at this evaluation point" in reasons["moved_here"]
    assert "min interval: last change 2.0 h before as_of" in reasons["cooling"]
    assert "unscored (insufficient_data)" in reasons["thin"]
    assert "plan X is still being finished" in reasons["h"]
    # an insufficient_data holder of a pool that ignores scores (a Meta rule's) may move
    exempt = allocate(ents, props, cfg, as_of=AS_OF, scores=scores, score_exempt_pools=("a",))
    assert deltas(exempt)["thin"] == -500  # one of three equal donors of a 15.00 want


def test_money_split_into_crumbs_goes_whole_to_one_recipient_instead():
    cfg = config(pool("a"), min_move=2.0, min_move_pct=0.0)
    ents = entities(("d", "a", 10_000), ("r1", "a", 10_000), ("r2", "a", 10_000))
    # d frees 3.00; r1 and r2 are equally good, so they would share 1.50 / 1.50, both under
    # the 2.00 minimum move: one sits out, the other takes all 3.00
    props = proposals(("d", 9_700, 0.0), ("r1", 20_000, 0.9), ("r2", 20_000, 0.9))
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    moved = deltas(plan)
    assert moved["d"] == -300 and sorted([moved["r1"], moved["r2"]]) == [0, 300]
    safe(plan, cfg)


def test_many_near_equal_recipients_of_scarce_money_settle_however_many_passes_it_takes():
    """Scale finding (issue 11): 10,000 EUR-cents offered to 150 equal recipients is a crumb
    each; they sit out one per pass until the rest reach the minimum move. That took more than
    the old fixed 64 passes ("allocation did not settle") on a 1,000-ad-set account."""
    cfg = config(pool("p"))
    recipients = [f"r{i:03d}" for i in range(150)]
    ents = entities(("d", "p", 100_000), *[(r, "p", 10_000) for r in recipients])
    props = proposals(("d", 90_000, 0.1), *[(r, 11_000, 0.5) for r in recipients])
    plan = allocate(ents, props, cfg, as_of=AS_OF)
    moved = plan.filter(pl.col("entity_id").is_in(recipients) & (pl.col("delta") != 0))
    assert deltas(plan)["d"] == -10_000
    assert moved["delta"].sum() == 10_000
    assert moved.height == 10_000 // 300  # as many as can each get the 300-cent minimum
    assert moved["delta"].min() >= 300
    safe(plan, cfg)
