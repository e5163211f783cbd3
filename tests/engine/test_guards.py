"""The guards: each catches the plan that breaks its rule, passes the rest, rejects malformed."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine import guards

AS_OF = datetime(2026, 10, 30, 6, 0)
CONFIG = PoolsConfig(
    pools=[
        {"name": "a", "tier": 1, "floor": 150, "ceiling": 250, "locked": ["c_locked"]},
        {"name": "b", "tier": 2, "floor": 50, "ceiling": 150},
    ]
)


def plan(*rows: tuple) -> pl.DataFrame:
    """Rows ``(entity_id, pool, old, new[, pause])`` as a contracts.PLAN frame."""
    records = []
    for entity_id, pool, old, new, *rest in rows:
        pause = bool(rest and rest[0])
        records.append(
            {
                "plan_id": "plan-test",
                "entity_id": entity_id,
                "entity_type": "adset",
                "campaign_id": f"c_{entity_id}",
                "pool": pool,
                "tier": 1 if pool == "a" else 2,
                "old_budget": old,
                "new_budget": new,
                "delta": new - old,
                "target_budget": new,
                "pause": pause,
                "action": "pause" if pause else ("hold" if new == old else "move"),
                "trigger": None,
                "score": 0.5,
                "reason": "test",
            }
        )
    return pl.DataFrame(records, schema=contracts.PLAN)


# A safe plan: a moves 15.00 inside pool a; pools stay within bounds.
SAFE = plan(("x", "a", 10_000, 8_500), ("y", "a", 10_000, 11_500), ("z", "b", 10_000, 10_000))


def changes(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [{"entity_id": e, "changed_at": t, "changes_last_hour": n} for e, t, n in rows],
        schema=contracts.LAST_CHANGES,
    )


def test_safe_plan_has_no_violations():
    result = guards.plan_violations(
        SAFE,
        CONFIG,
        last_changes=changes(("z", AS_OF - timedelta(hours=1), 1)),
        as_of=AS_OF,
        min_budgets=pl.DataFrame({"entity_id": ["x"], "min_budget": [8_500]}),
    )
    assert set(result) == {
        "floors",
        "ceilings",
        "learning_limit",
        "conservation",
        "min_interval",
        "min_budget",
        "locked",
        "pause_keeps_budget",
        "in_learning",
    }
    assert all(v.height == 0 for v in result.values()), result


def test_floor_breach_is_caught_unless_moving_toward_it():
    broken = plan(("x", "a", 10_000, 8_500), ("y", "a", 10_000, 10_000), ("z", "b", 10_000, 11_500))
    assert guards.check_floors(broken, CONFIG).height == 0  # a ends at 185.00, above 150.00
    below = plan(("x", "a", 10_000, 4_000), ("z", "b", 10_000, 16_000))
    found = guards.check_floors(below, CONFIG)
    assert found.select("pool", "floor", "before", "after", "shortfall").rows() == [
        ("a", 15_000, 10_000, 4_000, 11_000)
    ]
    assert "below its floor" in found["detail"][0]
    # Already below the floor and moving up (or staying) is not a breach.
    toward = plan(("x", "a", 10_000, 11_000), ("z", "b", 10_000, 9_000))
    assert guards.check_floors(toward, CONFIG).height == 0


def test_ceiling_breach_is_caught_unless_moving_toward_it():
    above = plan(("x", "a", 20_000, 17_000), ("z", "b", 14_000, 17_000))
    found = guards.check_ceilings(above, CONFIG)
    assert found.select("pool", "ceiling", "before", "after", "excess").rows() == [
        ("b", 15_000, 14_000, 17_000, 2_000)
    ]
    toward = plan(("x", "a", 30_000, 29_000), ("z", "b", 10_000, 11_000))
    assert guards.check_ceilings(toward, CONFIG).height == 0  # a was 300.00, goes down


def test_learning_limit_is_integer_exact():
    ok = plan(("x", "a", 1_000, 1_150), ("y", "a", 999, 850))  # 15 % of 999 is 149.85
    assert guards.check_learning_limit(ok, 15).height == 0
    over = plan(("x", "a", 1_000, 1_151), ("y", "a", 999, 849))
    found = guards.check_learning_limit(over, 15)
    assert found.select("entity_id", "delta", "allowed").rows() == [
        ("x", 151, 150),
        ("y", -150, 149),
    ]
    assert guards.check_learning_limit(over, 20).height == 0
    assert guards.check_learning_limit(plan(("x", "a", 0, 1)), 15).height == 1


def test_conservation_reports_the_difference():
    found = guards.check_conservation(plan(("x", "a", 10_000, 8_500), ("y", "a", 10_000, 11_501)))
    assert found.select("before", "after", "difference").rows() == [(20_000, 20_001, 1)]
    assert guards.check_conservation(SAFE).height == 0


def test_min_interval_and_edits_per_hour():
    last = changes(
        ("x", AS_OF - timedelta(hours=5, minutes=59), 0),  # too soon
        ("y", AS_OF - timedelta(hours=6), 4),  # old enough, but 4 edits in the last hour
        ("z", AS_OF - timedelta(hours=1), 3),  # too soon, but z is not edited
    )
    found = guards.check_min_interval(SAFE, last, AS_OF, 6, 4)
    assert found["entity_id"].to_list() == ["x", "y"]
    assert "less than 6 h" in found.filter(pl.col("entity_id") == "x")["detail"][0]
    assert "4 changes in the last hour" in found.filter(pl.col("entity_id") == "y")["detail"][0]
    exactly = changes(("x", AS_OF - timedelta(hours=6), 3), ("y", AS_OF - timedelta(days=1), 0))
    assert guards.check_min_interval(SAFE, exactly, AS_OF, 6, 4).height == 0
    paused = plan(("z", "b", 10_000, 10_000, True))
    assert guards.check_min_interval(paused, last, AS_OF, 6, 4)["entity_id"].to_list() == ["z"]


def test_min_budget():
    cut = plan(("x", "a", 1_100, 900), ("y", "a", 500, 400), ("w", "a", 500, 700))
    found = guards.check_min_budget(cut, 1_000)
    assert found.select("entity_id", "new_budget", "min_budget").rows() == [
        ("x", 900, 1_000),
        ("y", 400, 1_000),
    ]
    mins = pl.DataFrame({"entity_id": ["x"], "min_budget": [800]})
    found = guards.check_min_budget(cut, mins, default=450)
    assert found["entity_id"].to_list() == ["y"]
    unchanged_below = plan(("x", "a", 500, 500))
    assert guards.check_min_budget(unchanged_below, 1_000).height == 0


def test_locked_entities_are_caught_by_campaign_and_entity_flag():
    moved = plan(("locked", "a", 10_000, 9_000), ("y", "a", 10_000, 11_000))
    found = guards.check_locked(moved, CONFIG)
    assert found["entity_id"].to_list() == ["locked"]
    assert "is locked" in found["detail"][0]
    ents = pl.DataFrame({"entity_id": ["y"], "locked": [True]})
    assert guards.check_locked(moved, CONFIG, entities=ents)["entity_id"].sort().to_list() == [
        "locked",
        "y",
    ]
    paused = plan(("locked", "a", 10_000, 10_000, True))
    assert guards.check_locked(paused, CONFIG).height == 1
    assert guards.check_locked(SAFE, CONFIG).height == 0


def test_pause_must_keep_the_budget():
    broken = plan(("x", "a", 10_000, 9_000, True), ("y", "a", 10_000, 11_000))
    found = guards.check_pause_keeps_budget(broken)
    assert found["entity_id"].to_list() == ["x"]
    assert "is paused but its budget changes" in found["detail"][0]
    mislabeled = plan(("x", "a", 10_000, 10_000)).with_columns(action=pl.lit("pause"))
    assert guards.check_pause_keeps_budget(mislabeled).height == 1


def test_in_learning_is_checked_when_configured():
    learning = pl.DataFrame({"entity_id": ["x", "z"], "in_learning": [True, True]})
    assert guards.check_in_learning(SAFE, learning)["entity_id"].to_list() == ["x"]
    skip = CONFIG.model_copy(
        update={"settings": CONFIG.settings.model_copy(update={"skip_learning": True})}
    )
    assert guards.plan_violations(SAFE, skip, in_learning=learning)["in_learning"].height == 1
    assert guards.plan_violations(SAFE, CONFIG, in_learning=learning)["in_learning"].height == 0


def test_plan_violations_names_every_broken_rule():
    broken = plan(
        ("locked", "a", 10_000, 4_000),  # locked, over the cap, below min budget and floor
        ("y", "a", 10_000, 10_000, True),
        ("z", "b", 10_000, 16_001),  # ceiling, cap, conservation
    )
    result = guards.plan_violations(
        broken,
        CONFIG,
        last_changes=changes(("z", AS_OF - timedelta(hours=1), 0)),
        as_of=AS_OF,
        min_budgets=pl.DataFrame({"entity_id": ["locked"], "min_budget": [9_000]}),
    )
    failing = {k for k, v in result.items() if v.height}
    assert failing == {
        "floors",
        "ceilings",
        "learning_limit",
        "conservation",
        "min_interval",
        "min_budget",
        "locked",
    }
    with pytest.raises(ValueError, match="as_of"):
        guards.plan_violations(SAFE, CONFIG, last_changes=changes())


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (lambda p: p.with_columns(old_budget=pl.lit(None, pl.Int64)), r"'old_budget' is null"),
        (
            lambda p: p.with_columns(
                new_budget=pl.when(pl.col("entity_id") == "y").then(-5).otherwise("new_budget"),
                delta=pl.lit(0),
            ).drop("delta"),
            r"'new_budget' is negative \(-5\) for entity 'y'",
        ),
        (lambda p: p.with_columns(pl.col("new_budget").cast(pl.Float64)), r"'new_budget'.*Float64"),
        (lambda p: pl.concat([p, p.head(1)]), r"duplicate values \['x'\]"),
        (
            lambda p: p.with_columns(score=pl.lit(float("nan"))),
            r"'score' is NaN \(nan\) for entity 'x'",
        ),
        (
            lambda p: p.with_columns(delta=pl.lit(1, pl.Int64)),
            r"'delta' is not new − old \(1\) for entity 'x'",
        ),
        (lambda p: p.drop("old_budget"), r"missing columns \['old_budget'\]"),
        (lambda p: p.with_columns(pause=pl.lit(None, pl.Boolean)), r"'pause' is null"),
    ],
)
def test_malformed_plans_are_rejected(breaker, message):
    bad = breaker(SAFE)
    with pytest.raises(ValueError, match=message):
        guards.plan_violations(bad, CONFIG)


def test_unknown_pool_is_rejected():
    with pytest.raises(ValueError, match="nowhere"):
        guards.check_floors(plan(("x", "nowhere", 1, 1)), CONFIG)
