"""Replay a run's changes on a fresh account and recompute its value (SPEC §11).

A run's changes are exactly :meth:`SimulatedAccount.state` ``["changes"]``: a list of
``{"at": ISO local time, "entity_id", "field": "daily_budget" | "lifetime_budget" | "status",
"value"}``. :func:`replay` applies them on a fresh account of the scenario (its clock starting
at the end of the history), advances ``days`` days and returns the fully attributed value and
spend of those days, in total and per day and pool. The simulator is deterministic, so a run
that applied the same changes at the same times gets exactly the same numbers.

Common random numbers: every policy evaluated on the same scenario seed sees the same draws;
:func:`with_seed` makes the same scenario with another seed (a cheap copy, no file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import numpy as np
import polars as pl

from budget_pipeline.sources.simulated.account import HOURS_PER_DAY, Noise, SimulatedAccount
from budget_pipeline.sources.simulated.delivery import delivery_since
from budget_pipeline.sources.simulated.scenario import Scenario

PER_DAY_SCHEMA = {
    "date": pl.Date(),
    "pool": pl.Utf8(),
    "budget_minor": pl.Int64(),  # daily budgets of the pool's active budget holders at 00:00
    "spend_minor": pl.Int64(),
    "spend": pl.Float64(),
    "conversions": pl.Float64(),
    "purchase_value": pl.Float64(),
}


@dataclass(frozen=True)
class RunValue:
    """The fully attributed outcome of the ``days`` days after a scenario's history."""

    days: int
    value: float  # purchase value, major units
    spend: float  # major units
    conversions: float
    per_day: pl.DataFrame  # PER_DAY_SCHEMA: date × pool
    delivery: pl.DataFrame  # ad set × day, see delivery.DELIVERY_SCHEMA

    @property
    def roas(self) -> float:
        return self.value / self.spend if self.spend else 0.0


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    """The same scenario with another random seed (common random numbers per seed)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return scenario.model_copy(update={"seed": seed})


def run_value(account: SimulatedAccount, days: int) -> RunValue:
    """The value of the ``days`` days after the history on ``account`` (its clock past them)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    frame = delivery_since(account, days)
    budgets = pool_budgets(account, days)
    per_day = (
        frame.group_by("date", "pool")
        .agg(pl.col("spend_minor", "spend", "conversions", "purchase_value").sum())
        .join(budgets, on=["date", "pool"], how="full", coalesce=True)
        .with_columns(pl.col("budget_minor", "spend_minor").fill_null(0))
        .with_columns(pl.col("spend", "conversions", "purchase_value").fill_null(0.0))
        .select(list(PER_DAY_SCHEMA))
        .sort("date", "pool")
    )
    totals = frame.select(pl.col("purchase_value", "spend", "conversions").sum()).row(0)
    return RunValue(
        days=days,
        value=float(totals[0]),
        spend=float(totals[1]),
        conversions=float(totals[2]),
        per_day=per_day.cast(PER_DAY_SCHEMA),  # type: ignore[arg-type]
        delivery=frame,
    )


def replay(
    scenario: Scenario,
    changes: Sequence[dict],
    days: int,
    *,
    noise: Noise = "full",
) -> RunValue:
    """Apply ``changes`` (the format of ``state()["changes"]``) on a fresh account, advance
    ``days`` days from the end of the history, and return their fully attributed value."""
    return run_value(replay_account(scenario, changes, days, noise=noise), days)


def replay_account(
    scenario: Scenario, changes: Sequence[dict], days: int, *, noise: Noise = "full"
) -> SimulatedAccount:
    """A fresh account with ``changes`` applied and its clock ``days`` days past the history."""
    now = datetime.combine(scenario.end, time()) + timedelta(days=days)
    state = {
        "version": 1,
        "seed": scenario.seed,
        "start": scenario.start.isoformat(),
        "now": now.isoformat(),
        "changes": list(changes),
    }
    return SimulatedAccount(scenario, state, noise=noise)


def pool_budgets(account: SimulatedAccount, days: int) -> pl.DataFrame:
    """Each pool's total daily budget of active holders at 00:00 of each of the ``days`` days.

    Holders are ad sets with a daily budget outside CBO campaigns and CBO campaigns (lifetime
    budgets are not daily budgets). Changes at 00:00 count for that day.
    """
    first_day = account.scenario.days
    settings = account._initial.copy()
    changes = account._changes
    k = 0
    campaign_pool = {c.id: c.pool for c in account.scenario.campaigns}
    pools = sorted(set(campaign_pool.values()))
    pool_of_adset = np.array([pools.index(p) for p in account._adset_pool])
    pool_of_campaign = np.array([pools.index(campaign_pool[c]) for c in account._campaign_ids])
    daily_adset = ~account._lifetime & ~account._cbo_member
    rows = np.zeros((days, len(pools)), dtype=np.int64)
    for t in range(days):
        hour = (first_day + t) * HOURS_PER_DAY
        while k < len(changes) and changes[k].hour <= hour:
            account._apply(settings, changes[k])
            k += 1
        on = settings.adset_active & settings.campaign_active[account._adset_campaign]
        adset_part = np.where(daily_adset & on, settings.adset_budget, 0)
        camp_part = np.where(account._cbo & settings.campaign_active, settings.campaign_budget, 0)
        np.add.at(rows[t], pool_of_adset, adset_part)
        np.add.at(rows[t], pool_of_campaign, camp_part)
    dates = [account.scenario.end + timedelta(days=t) for t in range(days)]
    return pl.DataFrame(
        {
            "date": np.repeat(np.array(dates, dtype="datetime64[D]"), len(pools)),
            "pool": pools * days,
            "budget_minor": rows.ravel(),
        },
        schema={"date": pl.Date(), "pool": pl.Utf8(), "budget_minor": pl.Int64()},
    )
