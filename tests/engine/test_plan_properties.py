"""Property tests of the allocator (through the seed's threshold policy): whatever the pools,
budgets, scores, actions and history, no plan breaks a
floor, a ceiling, the learning cap, the minimum interval, the minimum budget, a lock, a pause
or conservation; checked with the guards and again with plain arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine import guards
from budget_pipeline.engine.guards import plan_violations
from budget_pipeline.engine.policy import plan_with_policies

AS_OF = datetime(2026, 10, 30, 12, 0)
# Money actions drawn more often than the rest, so most examples move something.
ACTION_KINDS = ("increase", "decrease") * 3 + ("pause", "alert", "flag_creative")


@dataclass
class Scenario:
    config: PoolsConfig
    entities: pl.DataFrame
    scores: pl.DataFrame
    actions: pl.DataFrame
    last_changes: pl.DataFrame
    min_budgets: pl.DataFrame | None
    in_learning: pl.DataFrame


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # Half the examples are "busy": every entity eligible and triggered, tight pool bounds, so
    # money crosses pools and tiers and the bounds bind; the other half mix in every reason to
    # hold (locks, pauses, missing scores, recent changes, learning).
    busy = draw(st.booleans())
    n_pools = draw(st.integers(2 if busy else 1, 4))
    ents, score_rows, action_rows, change_rows, min_rows, learning_rows = [], [], [], [], [], []
    pools, locked_campaigns = [], []
    for p in range(n_pools):
        name = f"pool{p}"
        budgets = draw(st.lists(st.integers(100, 10**7), min_size=2 if busy else 1, max_size=8))
        for i, budget in enumerate(budgets):
            entity_id = f"{name}_e{i}"
            cbo = draw(st.booleans())
            campaign_id = entity_id if cbo else f"c_{entity_id}"
            ents.append(
                {
                    "entity_id": entity_id,
                    "entity_type": "campaign" if cbo else "adset",
                    "campaign_id": campaign_id,
                    "name": entity_id,
                    "status": "ACTIVE"
                    if busy
                    else draw(st.sampled_from(["ACTIVE"] * 5 + ["PAUSED"])),
                    "budget_type": "daily",
                    "daily_budget": budget,
                    "currency": "EUR",
                    "pool": name,
                    "locked": not busy and draw(st.integers(0, 9)) == 0,
                }
            )
            if not busy and draw(st.integers(0, 9)) == 0:
                locked_campaigns.append(campaign_id)
            score = None if not busy and draw(st.integers(0, 7)) == 0 else draw(st.floats(0, 1))
            score_rows.append(
                {
                    "entity_id": entity_id,
                    "as_of": AS_OF,
                    "status": "scored" if score is not None else "insufficient_data",
                    "score": score,
                }
            )
            kinds = draw(st.lists(st.sampled_from(ACTION_KINDS), max_size=3))
            if busy:
                kinds = draw(st.sampled_from([["increase"], ["decrease"], ["decrease"], []]))
            for kind in kinds:
                pct = (
                    draw(st.sampled_from([5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 100.0, 12.5]))
                    if kind in ("increase", "decrease")
                    else None
                )
                action_rows.append(
                    {"entity_id": entity_id, "action": kind, "pct": pct, "trigger": f"t_{kind}"}
                )
            if not busy and draw(st.integers(0, 3)) == 0:
                change_rows.append(
                    {
                        "entity_id": entity_id,
                        "changed_at": AS_OF - timedelta(minutes=draw(st.integers(-30, 24 * 60))),
                        "changes_last_hour": draw(st.integers(0, 5)),
                    }
                )
            if draw(st.booleans()):
                min_rows.append({"entity_id": entity_id, "min_budget": draw(st.integers(0, 5_000))})
            learning_rows.append(
                {"entity_id": entity_id, "in_learning": not busy and draw(st.booleans())}
            )
        total = sum(budgets)
        floor = int(total * draw(st.floats(0.9 if busy else 0.0, 1.02 if busy else 1.2)))
        ceiling = max(
            floor, int(total * draw(st.floats(0.98 if busy else 0.8, 1.1 if busy else 1.6))), 1
        )
        pools.append(
            {
                "name": name,
                "tier": draw(st.integers(1, 3)),
                "policy": "composite",
                "floor": floor / 100,
                "ceiling": ceiling / 100,
                "locked": locked_campaigns if p == 0 else [],
            }
        )
    cap = draw(st.sampled_from([5.0, 10.0, 12.5, 15.0, 20.0]))
    config = PoolsConfig(
        settings={
            "learning_cap_pct": cap,
            "learning_limit_pct": draw(st.sampled_from([cap, 20.0])),
            "min_change_interval_hours": draw(st.sampled_from([0.0, 2.0, 6.0, 24.0])),
            "max_changes_per_hour": draw(st.integers(1, 4)),
            "cross_tier_margin": draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])),
            "min_adset_budget": draw(st.sampled_from([0.0, 1.0, 20.0])),
            "skip_learning": draw(st.booleans()),
        },
        pools=pools,
    )
    return Scenario(
        config=config,
        entities=pl.DataFrame(ents, schema=contracts.AD_ENTITIES),
        scores=pl.DataFrame(score_rows, schema=contracts.SCORES),
        actions=pl.DataFrame(
            [{**a, "as_of": AS_OF} for a in action_rows], schema=contracts.ACTIONS
        ),
        last_changes=pl.DataFrame(change_rows, schema=contracts.LAST_CHANGES),
        min_budgets=(
            pl.DataFrame(min_rows, schema={"entity_id": pl.Utf8, "min_budget": pl.Int64})
            if draw(st.booleans())
            else None
        ),
        in_learning=pl.DataFrame(
            learning_rows, schema={"entity_id": pl.Utf8, "in_learning": pl.Boolean}
        ),
    )


def run(s: Scenario) -> pl.DataFrame:
    return plan_with_policies(
        s.entities,
        s.scores,
        s.actions,
        s.config,
        as_of=AS_OF,
        last_changes=s.last_changes,
        min_budgets=s.min_budgets,
        in_learning=s.in_learning,
    )


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_plan_breaks_a_guard(s: Scenario):
    plan = run(s)
    violations = plan_violations(
        plan,
        s.config,
        last_changes=s.last_changes,
        as_of=AS_OF,
        min_budgets=s.min_budgets,
        in_learning=s.in_learning,
        entities=s.entities,
    )
    assert {k: v for k, v in violations.items() if v.height} == {}

    # The same invariants again in plain arithmetic, row by row.
    cfg, st_ = s.config, s.config.settings
    assert plan.schema == pl.Schema(contracts.PLAN)
    assert sorted(plan["entity_id"]) == sorted(s.entities["entity_id"])
    assert plan["plan_id"].n_unique() == 1
    # the budgets still spending: a paused holder's money went to active ones
    active = plan.filter(~pl.col("pause"))
    assert active["new_budget"].sum() == plan["old_budget"].sum()
    for pool in cfg.pools:
        rows = plan.filter(pl.col("pool") == pool.name)
        before = int(rows["old_budget"].sum())
        after = int(active.filter(pl.col("pool") == pool.name)["new_budget"].sum())
        assert after >= min(cfg.floor_minor(pool.name), before)
        assert after <= max(cfg.ceiling_minor(pool.name), before)
    ents = {e["entity_id"]: e for e in s.entities.iter_rows(named=True)}
    sc = {r["entity_id"]: r for r in s.scores.iter_rows(named=True)}
    changes = {r["entity_id"]: r for r in s.last_changes.iter_rows(named=True)}
    learning = {r["entity_id"]: r["in_learning"] for r in s.in_learning.iter_rows(named=True)}
    mins = (
        dict(s.min_budgets.iter_rows()) if s.min_budgets is not None else {}
    )  # entity → min budget
    acts = s.actions.group_by("entity_id").agg("action", "pct")
    acts = {r["entity_id"]: r for r in acts.iter_rows(named=True)}
    for row in plan.iter_rows(named=True):
        e, old, new = row["entity_id"], row["old_budget"], row["new_budget"]
        delta = new - old
        assert row["delta"] == delta and row["reason"]
        assert abs(delta) * 100 <= old * min(st_.learning_cap_pct, st_.learning_limit_pct)
        if delta:  # no crumbs
            assert abs(delta) >= max(round(st_.min_move * 100), -(-old * 3 // 100))
        if row["pause"]:
            assert new == old and row["action"] == "pause"
        if delta < 0:
            assert new >= mins.get(e, cfg.min_adset_budget_minor)
        change = changes.get(e)
        frozen = (
            ents[e]["locked"]
            or cfg.is_locked(e, ents[e]["campaign_id"])
            or ents[e]["status"] != "ACTIVE"
            or sc[e]["score"] is None
            or (change is not None and change["changed_at"] > AS_OF - timedelta(
                hours=st_.min_change_interval_hours))
            or (change is not None and change["changed_at"] >= AS_OF)
            or (change is not None and change["changes_last_hour"] >= st_.max_changes_per_hour)
            or (st_.skip_learning and learning[e])
        )  # fmt: skip
        if frozen:
            assert delta == 0 and not row["pause"] and row["action"] == "hold", row
        kinds = set(acts[e]["action"]) if e in acts else set()
        if delta < 0:  # a decrease trigger, or a pause waiting for room: never below target
            assert "decrease" in kinds or ("pause" in kinds and not row["pause"])
            assert new >= row["target_budget"]
        if delta > 0:  # an increase trigger, or an absorber scoring above 0.5
            assert "pause" not in kinds and "decrease" not in kinds
            assert "increase" in kinds or sc[e]["score"] > 0.5
            assert new <= row["target_budget"]


@settings(max_examples=50, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_plan_is_stable_under_row_order(s: Scenario, rnd):
    first = run(s)

    def shuffled(frame: pl.DataFrame) -> pl.DataFrame:
        order = list(range(frame.height))
        rnd.shuffle(order)
        return frame[order]

    again = run(
        Scenario(
            s.config,
            shuffled(s.entities),
            shuffled(s.scores),
            shuffled(s.actions),
            shuffled(s.last_changes),
            s.min_budgets,
            shuffled(s.in_learning),
        )
    )
    assert first.equals(again)


def small(pools: list[dict], rows: list[tuple], **settings_: object) -> Scenario:
    """A hand-written scenario: ``pools`` as in the config; ``rows`` ``(entity_id, pool, daily
    budget, action, pct)``, every entity active, scored 0.5 and unchanged; cap 5 %, no minimum
    budget."""
    ents = [
        {"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "name": e,
         "status": "ACTIVE", "budget_type": "daily", "daily_budget": b, "currency": "EUR",
         "pool": p, "locked": False}
        for e, p, b, _, _ in rows
    ]  # fmt: skip
    return Scenario(
        config=PoolsConfig(
            settings={"learning_cap_pct": 5.0, "min_adset_budget": 0.0, **settings_},
            pools=[{"tier": 1, "policy": "composite", **p} for p in pools],
        ),
        entities=pl.DataFrame(ents, schema=contracts.AD_ENTITIES),
        scores=pl.DataFrame(
            [{"entity_id": e, "as_of": AS_OF, "status": "scored", "score": 0.5} for e, *_ in rows],
            schema=contracts.SCORES,
        ),
        actions=pl.DataFrame(
            [
                {"entity_id": e, "action": a, "pct": pct, "trigger": f"t_{a}", "as_of": AS_OF}
                for e, _, _, a, pct in rows
                if a
            ],
            schema=contracts.ACTIONS,
        ),
        last_changes=contracts.empty(contracts.LAST_CHANGES),
        min_budgets=None,
        in_learning=pl.DataFrame(
            {"entity_id": [e for e, *_ in rows], "in_learning": [False] * len(rows)}
        ),
    )


# Found by hypothesis: the row drawn is a pause whose money went to its pool's other holder; a
# paused row's stored budget spends nothing, so raising it alone breaks no ceiling (the
# pause_keeps_budget guard catches that): the ceiling is broken by a spending row.
PAUSE_FUNDS_ITS_POOL = small(
    [{"name": "pool0", "floor": 0.0, "ceiling": 21.0}],
    [("pool0_e0", "pool0", 2000, "increase", 5.0), ("pool0_e1", "pool0", 100, "pause", None)],
)
# A pool above its ceiling whose pause drains it to another pool: it ends far below where it
# started, so one row raised by only the ceiling leaves it above its ceiling but below its
# start, which the guard allows (a pool outside its bounds may move toward them).
PAUSE_DRAINS_ITS_POOL = small(
    [
        {"name": "pool0", "floor": 0.0, "ceiling": 8.0},
        {"name": "pool1", "floor": 0.0, "ceiling": 300.0},
    ],
    [
        ("pool0_e0", "pool0", 100, None, None),
        ("pool0_e1", "pool0", 900, "pause", None),
        ("pool1_e0", "pool1", 20_000, "increase", 5.0),
    ],
)


@settings(max_examples=50, deadline=None)
@given(scenarios(), st.integers(0, 10**6))
@example(PAUSE_FUNDS_ITS_POOL, 1)
@example(PAUSE_DRAINS_ITS_POOL, 0)
def test_each_guard_catches_a_plan_broken_its_way(s: Scenario, pick: int):
    plan = run(s)
    cfg = s.config
    row = pick % plan.height
    e, old = plan["entity_id"][row], plan["old_budget"][row]
    pool = plan["pool"][row]

    def with_new(frame: pl.DataFrame, new: int) -> pl.DataFrame:
        hit = pl.col("entity_id") == e
        return frame.with_columns(
            new_budget=pl.when(hit).then(pl.lit(new, pl.Int64)).otherwise("new_budget")
        ).with_columns(delta=pl.col("new_budget") - pl.col("old_budget"))

    if not plan["pause"][row]:  # a paused row's stored budget spends nothing: pause check below
        assert guards.check_conservation(with_new(plan, plan["new_budget"][row] + 1)).height == 1
    cap = min(cfg.settings.learning_cap_pct, cfg.settings.learning_limit_pct)
    over = old + int(old * cap // 100) + 1
    found = guards.check_learning_limit(with_new(plan, over), cap)
    assert e in found["entity_id"].to_list()
    # Above the ceiling and above where the pool started, on a row that spends (a paused row's
    # stored budget does not: the pause is lifted with the raise).
    pool_old = int(plan.filter(pl.col("pool") == pool)["old_budget"].sum())
    bumped = with_new(
        plan, plan["new_budget"][row] + cfg.ceiling_minor(pool) + pool_old + 1
    ).with_columns(pause=pl.col("pause") & (pl.col("entity_id") != e))
    assert pool in guards.check_ceilings(bumped, cfg)["pool"].to_list()
    if cfg.floor_minor(pool) > 0 and pool_old > 0:
        drained = plan.with_columns(
            new_budget=pl.when(pl.col("pool") == pool).then(0).otherwise("new_budget")
        ).with_columns(delta=pl.col("new_budget") - pl.col("old_budget"))
        assert pool in guards.check_floors(drained, cfg)["pool"].to_list()
    if old > 0:
        cut = with_new(plan, old - 1)
        own_min = pl.DataFrame({"entity_id": [e], "min_budget": [old]})
        assert guards.check_min_budget(cut, own_min)["entity_id"].to_list() == [e]
        locked = pl.DataFrame({"entity_id": [e], "locked": [True]})
        assert e in guards.check_locked(cut, cfg, entities=locked)["entity_id"].to_list()
        just_now = pl.DataFrame(
            {"entity_id": [e], "changed_at": [AS_OF], "changes_last_hour": [1]},
            schema=contracts.LAST_CHANGES,
        )
        found = guards.check_min_interval(cut, just_now, AS_OF, 1.0, 4)
        assert found["entity_id"].to_list() == [e]
        paused = cut.with_columns(pause=pl.col("entity_id") == e)
        assert e in guards.check_pause_keeps_budget(paused)["entity_id"].to_list()
