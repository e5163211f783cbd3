"""Weekly pacing as Meta documents it: a mid-week change restarts the week's allowance."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from budget_pipeline.sources.simulated import Scenario, SimulatedAccount
from budget_pipeline.sources.simulated.pacing import pace_day, week_elapsed_days

MONDAY = date(2026, 9, 7)


def make_scenario(adsets: list[dict], *, days: int, start: date = MONDAY, seed: int = 7):
    """One campaign of large, steady, drift-free ad sets (100/day unless given)."""
    base = {"daily_budget": 100, "response": {"scale": 100.0, "elasticity": 0.6}, "aov": 50.0}
    base |= {"audience": 5_000_000, "drift": 0.0}
    return Scenario.model_validate(
        {
            "seed": seed,
            "start": start,
            "days": days,
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "pools": [{"name": "main", "tier": 1, "floor": 0, "ceiling": 100_000}],
            "campaigns": [
                {
                    "id": "100",
                    "name": "PR | test",
                    "pool": "main",
                    "adsets": [{"id": str(201 + i), **base, **a} for i, a in enumerate(adsets)],
                }
            ],
        }
    )


def spend_by_day(account: SimulatedAccount, first: date, last: date) -> pl.DataFrame:
    return (
        account.delivery(first, last)
        .group_by("adset_id", "date")
        .agg(pl.col("spend").sum())
        .sort("adset_id", "date")
    )


def test_friday_cut_keeps_delivering_the_new_budget():
    # history Monday 7th .. Thursday 17th; the clock stops at Friday 18th 00:00
    sc = make_scenario([{"daily_budget": 100}, {"daily_budget": 100}, {}], days=11, seed=5)
    assert sc.end.weekday() == 4
    cut, twin = SimulatedAccount(sc), SimulatedAccount(sc)
    # the week so far (Sunday..Thursday) spent about 5 × 95
    week = spend_by_day(cut, sc.end - timedelta(days=5), sc.end - timedelta(days=1))
    assert week.filter(pl.col("adset_id") == "201")["spend"].sum() > 450
    cut.apply_budget_change("201", daily_budget=8500)  # -15 %
    cut.apply_budget_change("202", daily_budget=11500)  # +15 %: the pool keeps its money
    for account in (cut, twin):
        account.advance(48)
    fri_sat = [spend_by_day(a, sc.end, sc.end + timedelta(days=1)) for a in (cut, twin)]
    one = fri_sat[0].filter(pl.col("adset_id") == "201")["spend"]
    # two days of the new budget, delivered as usual (utilisation 0.85..1.7), not stopped
    assert ((one > 0.85 * 85) & (one <= 1.75 * 85)).all()
    assert one.sum() <= 2 * 85 + 1e-9  # and no more than the time left × the new budget
    pool_cut, pool_static = (f["spend"].sum() for f in fri_sat)
    assert pool_cut == pytest.approx(pool_static, rel=0.03)


def test_mid_week_increase_gets_the_new_budget_for_the_days_left():
    # Meta's example: $10/day from Sunday, $20 from Wednesday 00:00 → at most $80 over 4 days
    sc = make_scenario([{"daily_budget": 10}], days=9, start=MONDAY - timedelta(days=7))
    assert sc.end.weekday() == 2
    account = SimulatedAccount(sc, noise="none")
    account.apply_budget_change("201", daily_budget=2000)
    account.advance(4 * 24)
    spent = account.delivery(sc.end, sc.end + timedelta(days=3))["spend"].sum()
    assert 0.9 * 80 < spent <= 80


def test_week_allowance_binds_and_restarts_on_sunday():
    # planned 1.5 days of budget every day: Sunday..Thursday use 7.5 > 7, so Thursday is cut
    planned = np.full((1, 24), 1.5 / 24)
    used, delivered = 0.0, []
    for elapsed in range(7):
        hours, end = pace_day(
            planned, np.zeros((1, 24), bool), np.array([used]), elapsed, np.ones(1, bool)
        )
        delivered.append(hours.sum())
        used = end[0]
    assert delivered[:4] == pytest.approx([1.5] * 4)
    assert delivered[4] == pytest.approx(1.0)  # the 7 days of budget are used up
    assert delivered[5:] == pytest.approx([0.0, 0.0])
    hours, end = pace_day(planned, np.zeros((1, 24), bool), np.array([0.0]), 0, np.ones(1, bool))
    assert hours.sum() == pytest.approx(1.5)  # Sunday: a fresh allowance


def test_change_mid_day_restarts_the_allowance_from_that_hour():
    planned = np.full((2, 24), 1.5 / 24)
    reset = np.zeros((2, 24), bool)
    reset[1, 12] = True  # the second ad set's budget changes at 12:00 on Friday
    hours, end = pace_day(planned, reset, np.array([7.0, 7.0]), 5, np.ones(2, bool))
    assert hours[0].sum() == pytest.approx(0.0)  # week used up, nothing changed
    assert hours[1, :12].sum() == pytest.approx(0.0)
    assert hours[1, 12:].sum() == pytest.approx(0.75)  # fresh: 1.5 days left, 12 h of 1.5/day
    assert end == pytest.approx([7.0, 5.5 + 0.75])


def test_lifetime_budgets_are_not_paced_weekly():
    planned = np.full((1, 24), 1.5 / 24)
    hours, _ = pace_day(planned, np.zeros((1, 24), bool), np.array([9.0]), 6, np.zeros(1, bool))
    assert hours.sum() == pytest.approx(1.5)


def test_first_week_is_prorated_from_the_start():
    assert [week_elapsed_days(d) for d in range(7)] == [1, 2, 3, 4, 5, 6, 0]
    # starting on a Thursday with 1.6 days planned a day: 3 days left of the week → 3 days
    planned = np.full((1, 24), 1.6 / 24)
    used, total = 4.0, 0.0
    for elapsed in (4, 5, 6):
        hours, end = pace_day(
            planned, np.zeros((1, 24), bool), np.array([used]), elapsed, np.ones(1, bool)
        )
        total += hours.sum()
        used = end[0]
    assert total == pytest.approx(3.0)
