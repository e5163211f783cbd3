"""plan_violations validates a plan once and runs each check's body: on random plans broken in
every way (pools past their bounds, big steps, money created, recent or frequent changes, cuts
below a minimum, locks, pauses that move a budget, learning) it finds exactly what each check
finds called alone, and the reworked min interval, min budget and in-learning checks find
what they found before (tests/guards_oracle.py, commit e29447a)."""

from __future__ import annotations

from datetime import datetime, timedelta

import guards_oracle as oracle
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine import guards

AS_OF = datetime(2026, 10, 30, 6, 0)
IDS = [f"e{i}" for i in range(12)]


@st.composite
def broken_plans(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, len(IDS)))
    rows = []
    for entity_id in IDS[:n]:
        old = draw(st.integers(0, 20_000))
        new = draw(st.sampled_from([old, old + 1, max(old - 1, 0)]) | st.integers(0, 30_000))
        pause = draw(st.integers(0, 4)) == 0
        action = "pause" if pause else draw(st.sampled_from(["hold", "increase", "pause"]))
        rows.append(
            {
                "plan_id": "plan-test",
                "entity_id": entity_id,
                "entity_type": "adset",
                "campaign_id": draw(st.sampled_from([f"c_{entity_id}", "c_locked"])),
                "pool": draw(st.sampled_from(["a", "b"])),
                "tier": 1,
                "old_budget": old,
                "new_budget": new,
                "delta": new - old,
                "target_budget": new,
                "pause": pause,
                "action": action,
                "trigger": None,
                "score": 0.5,
                "reason": "test",
            }
        )
    some = st.sampled_from(IDS[: n + 2])  # a few ids the plan does not have
    changes = pl.DataFrame(
        [
            {
                "entity_id": draw(some),
                "changed_at": AS_OF - timedelta(minutes=draw(st.integers(-60, 48 * 60))),
                "changes_last_hour": draw(st.integers(0, 5)),
            }
            for _ in range(draw(st.integers(0, 10)))
        ],
        schema=contracts.LAST_CHANGES,
    )
    mins = pl.DataFrame(
        [
            {"entity_id": draw(some), "min_budget": draw(st.integers(0, 25_000))}
            for _ in range(draw(st.integers(0, 14)))
        ],
        schema={"entity_id": pl.Utf8, "min_budget": pl.Int64},
    )
    learning = pl.DataFrame(
        [
            {"entity_id": draw(some), "in_learning": draw(st.none() | st.booleans())}
            for _ in range(draw(st.integers(0, 10)))
        ],
        schema={"entity_id": pl.Utf8, "in_learning": pl.Boolean},
    )
    locked = pl.DataFrame(
        {"entity_id": IDS[:n], "locked": [draw(st.integers(0, 5)) == 0 for _ in IDS[:n]]}
    )
    config = PoolsConfig(
        settings={
            "learning_cap_pct": draw(st.sampled_from([10.0, 12.5, 15.0])),
            "min_change_interval_hours": draw(st.sampled_from([0.0, 2.0, 24.0])),
            "max_changes_per_hour": draw(st.integers(1, 4)),
            "min_adset_budget": draw(st.sampled_from([0.0, 20.0, 150.0])),
            "skip_learning": draw(st.booleans()),
        },
        pools=[
            {
                "name": p,
                "tier": 1,
                "floor": draw(st.integers(0, 800)),
                "ceiling": 1_000,
                "locked": ["c_locked"] if draw(st.booleans()) else [],
            }
            for p in ("a", "b")
        ],
    )
    return {
        "plan": pl.DataFrame(rows, schema=contracts.PLAN),
        "config": config,
        "last_changes": changes if draw(st.booleans()) else None,
        "min_budgets": mins if draw(st.booleans()) else None,
        "in_learning": learning if draw(st.booleans()) else None,
        "entities": locked if draw(st.booleans()) else None,
    }


@settings(max_examples=200, deadline=None)
@given(broken_plans())
def test_violations_are_what_each_check_finds_alone(case):
    plan, config = case["plan"], case["config"]
    s = config.settings
    lc, mins, learning = case["last_changes"], case["min_budgets"], case["in_learning"]
    found = guards.plan_violations(
        plan,
        config,
        last_changes=lc,
        as_of=AS_OF,
        min_budgets=mins,
        in_learning=learning,
        entities=case["entities"],
    )
    lc = contracts.empty(contracts.LAST_CHANGES) if lc is None else lc
    default = config.min_adset_budget_minor
    mins_or_default = default if mins is None else mins
    checked = s.skip_learning and learning is not None
    if not checked:
        learning = pl.DataFrame(schema={"entity_id": pl.Utf8, "in_learning": pl.Boolean})
    alone = {
        "floors": guards.check_floors(plan, config),
        "ceilings": guards.check_ceilings(plan, config),
        "learning_limit": guards.check_learning_limit(plan, s.learning_cap_pct),
        "conservation": guards.check_conservation(plan),
        "min_interval": guards.check_min_interval(
            plan, lc, AS_OF, s.min_change_interval_hours, s.max_changes_per_hour
        ),
        "min_budget": guards.check_min_budget(plan, mins_or_default, default=default),
        "locked": guards.check_locked(plan, config, entities=case["entities"]),
        "pause_keeps_budget": guards.check_pause_keeps_budget(plan),
        "in_learning": guards.check_in_learning(plan, learning),
    }
    assert found.keys() == alone.keys()
    for name, frame in alone.items():
        assert_frame_equal(found[name], frame, check_exact=True)
    before = {
        "min_interval": oracle.check_min_interval(
            plan, lc, AS_OF, s.min_change_interval_hours, s.max_changes_per_hour
        ),
        "min_budget": oracle.check_min_budget(plan, mins_or_default, default=default),
        "in_learning": oracle.check_in_learning(plan, learning),
    }
    for name, frame in before.items():
        assert_frame_equal(found[name], frame.sort("entity_id"), check_exact=True)


def test_a_malformed_plan_is_refused_once_by_every_path():
    plan = pl.DataFrame(
        {
            "plan_id": ["p", "p"],
            "entity_id": ["x", "x"],
            "campaign_id": ["c", "c"],
            "pool": ["a", "a"],
            "old_budget": [100, 100],
            "new_budget": [100, 100],
            "pause": [False, False],
        }
    )
    config = PoolsConfig(pools=[{"name": "a", "tier": 1, "floor": 0, "ceiling": 10}])
    for check in (
        lambda: guards.plan_violations(plan, config),
        lambda: guards.check_learning_limit(plan, 15.0),
        lambda: guards.check_min_budget(plan, 0),
        lambda: guards.check_in_learning(plan, pl.DataFrame({"entity_id": ["x"]})),
        lambda: guards.check_floors(plan, config),
        lambda: guards.check_conservation(plan),
    ):
        with pytest.raises(ValueError, match="duplicate values"):
            check()
