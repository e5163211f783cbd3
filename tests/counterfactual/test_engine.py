"""The counterfactual engine on hand-made frames: budgets on past days, would-have changes,
and the curve estimate against worked numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.budget_history import CHANGES, budgets_on, changes_from_start
from budget_pipeline.engine.counterfactual import PLANS, plan_changes, would_have_budgets
from budget_pipeline.engine.counterfactual_value import curve_outcomes

D = date(2026, 9, 1)


def _entities(**budgets: tuple[int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"entity_id": e, "entity_type": "adset", "campaign_id": f"c{e}", "name": e,
          "status": s, "budget_type": "daily", "daily_budget": b, "currency": "EUR",
          "pool": "p", "locked": False} for e, (b, s) in budgets.items()],
        schema=contracts.AD_ENTITIES,
    )  # fmt: skip


def _change(entity, at, budget=None, status=None, before=None, was=None) -> dict:
    return {"entity_id": entity, "at": at, "budget_before": before, "budget_after": budget,
            "status_before": was, "status_after": status}  # fmt: skip


def test_budgets_on_past_days_walk_the_log_back_from_now():
    now = _entities(a=(9000, "PAUSED"), b=(5000, "ACTIVE"))
    changes = pl.DataFrame(
        [
            _change("a", datetime(2026, 9, 5), budget=12000, before=10000),
            _change("a", datetime(2026, 9, 7, 6), status="PAUSED", was="ACTIVE"),
            _change("a", datetime(2026, 9, 10, 12), budget=9000, before=12000),
        ],
        schema=CHANGES,
    )
    days = [D + timedelta(days=k) for k in (3, 4, 5, 7, 9, 10)]
    got = budgets_on(now, changes, days).filter(pl.col("entity_id") == "a")
    # a change at 00:00 holds that day; one at noon from the next
    assert got["daily_budget"].to_list() == [10000, 12000, 12000, 12000, 12000, 9000]
    assert got["status"].to_list() == ["ACTIVE", "ACTIVE", "ACTIVE", "PAUSED", "PAUSED", "PAUSED"]
    untouched = budgets_on(now, changes, days).filter(pl.col("entity_id") == "b")
    assert untouched["daily_budget"].to_list() == [5000] * 6


def test_a_record_of_new_values_gets_its_before_values_from_the_start():
    initial = pl.DataFrame(
        {"entity_id": ["a", "b"], "daily_budget": [100, 200], "status": ["ACTIVE", "ACTIVE"]}
    )
    record = pl.DataFrame(
        {
            "entity_id": ["a", "b", "a", "a"],
            "at": [datetime(2026, 9, d) for d in (2, 2, 3, 4)],
            "budget_after": [110, None, None, 130],
            "status_after": [None, "PAUSED", "PAUSED", None],
        },
        schema={"entity_id": pl.Utf8, "at": pl.Datetime("us"), "budget_after": pl.Int64,
                "status_after": pl.Utf8},
    )  # fmt: skip
    out = changes_from_start(initial, record)
    assert out["budget_before"].to_list() == [110 - 10, None, None, 110]
    assert out["status_before"].to_list() == [None, "ACTIVE", "ACTIVE", None]
    assert out["entity_id"].to_list() == ["a", "b", "a", "a"]  # time order kept


def _plans(rows: list[dict]) -> pl.DataFrame:
    base = {"plan_id": "x", "entity_type": "adset", "campaign_id": "c", "pool": "p", "tier": 1,
            "target_budget": 0, "pause": False, "action": "hold", "trigger": None,
            "score": None, "reason": "", "real_active": True, "started_on": D}  # fmt: skip
    frame = pl.DataFrame([{**base, **r} for r in rows])
    return frame.with_columns(
        as_of=pl.col("date").cast(pl.Datetime("us")),
        delta=pl.col("new_budget") - pl.col("old_budget"),
    ).pipe(contracts.conform, PLANS)


def test_would_have_plans_become_changes_only_where_the_budget_or_status_moves():
    plans = _plans(
        [
            {"date": D, "entity_id": "a", "old_budget": 100, "new_budget": 110, "active": True,
             "real_budget": 100},
            {"date": D + timedelta(1), "entity_id": "a", "old_budget": 110, "new_budget": 110,
             "active": True, "real_budget": 100},
            {"date": D + timedelta(2), "entity_id": "a", "old_budget": 110, "new_budget": 110,
             "active": False, "pause": True, "real_budget": 100},
            {"date": D, "entity_id": "b", "old_budget": 50, "new_budget": 50, "active": True,
             "real_budget": 50},
        ]
    )  # fmt: skip
    changes = plan_changes(plans)
    assert changes.select("entity_id", "budget_before", "budget_after", "status_after").rows() == [
        ("a", 100, 110, None),
        ("a", None, None, "PAUSED"),
    ]
    assert changes["at"].to_list() == [datetime(2026, 9, 1), datetime(2026, 9, 3)]
    budgets = would_have_budgets(plans).sort("entity_id", "date")
    assert budgets["budget"].to_list() == [110, 110, 0, 50]  # paused: nothing to spend


def _history(levels: dict[str, float], spend: dict[str, float], days: int = 42) -> pl.DataFrame:
    """Exact daily data on value = A · spend^0.6 at 5 EUR a purchase: so many purchases that
    each holder is judged by itself, hardly by its pool (partial pooling)."""
    rows = []
    for k in range(days):
        for holder, a in levels.items():
            value = a * spend[holder] ** 0.6
            rows.append({"adset_id": holder, "campaign_id": f"c{holder}",
                         "date": D + timedelta(days=k), "spend": spend[holder],
                         "conversions": value / 5.0, "purchase_value": value})  # fmt: skip
    return pl.DataFrame(rows)


def test_the_curve_estimate_prices_a_budget_change_on_the_fitted_curve():
    config = PoolsConfig(pools=[{"name": "p", "tier": 1, "floor": 0, "ceiling": 10_000}])
    levels, spend = {"a": 40.0, "b": 20.0, "c": 30.0}, {"a": 100.0, "b": 100.0, "c": 80.0}
    daily = _history(levels, spend)
    last = D + timedelta(days=41)
    days = [last - timedelta(days=k) for k in range(7)]
    budgets = pl.DataFrame(
        [{"entity_id": h, "date": d, "pool": "p", "real": int(spend[h] * 100),
          "budget": {"a": 12000, "b": 0, "c": 8000}[h]} for h in levels for d in days]
    )  # fmt: skip
    holders = pl.DataFrame(
        {"holder_id": list(levels), "entity_type": ["adset"] * 3, "pool": ["p"] * 3}
    )
    per_day, totals = curve_outcomes(budgets, daily, holders, config, draws=2000)
    exact = levels["a"] * (120**0.6 - 100**0.6) - levels["b"] * 100**0.6  # c: unchanged
    day = per_day.row(0, named=True)
    assert day["value_difference"] == pytest.approx(exact, rel=0.05)
    assert day["difference_low"] < exact < day["difference_high"]
    assert day["would_have_spend"] == pytest.approx(120.0 + 0.0 + 80.0)
    assert day["real_value"] == pytest.approx(sum(a * spend[h] ** 0.6 for h, a in levels.items()))
    total = totals.filter(pl.col("pool") == "all").row(0, named=True)
    assert total["value_difference"] == pytest.approx(7 * exact, rel=0.05)
    assert total["difference_low"] < 7 * exact < total["difference_high"]


def test_no_change_no_difference():
    config = PoolsConfig(pools=[{"name": "p", "tier": 1, "floor": 0, "ceiling": 10_000}])
    levels, spend = {"a": 40.0, "b": 20.0}, {"a": 100.0, "b": 60.0}
    last = D + timedelta(days=41)
    budgets = pl.DataFrame(
        [{"entity_id": h, "date": last, "pool": "p", "real": int(s * 100),
          "budget": int(s * 100)} for h, s in spend.items()]
    )  # fmt: skip
    holders = pl.DataFrame(
        {"holder_id": ["a", "b"], "entity_type": ["adset"] * 2, "pool": ["p"] * 2}
    )
    per_day, _ = curve_outcomes(budgets, _history(levels, spend), holders, config)
    row = per_day.row(0, named=True)
    assert row["value_difference"] == row["difference_low"] == row["difference_high"] == 0.0
    assert np.isclose(row["would_have_value"], row["real_value"])
