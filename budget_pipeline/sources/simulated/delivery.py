"""Fully attributed delivery: what each ad set really spent and earned, day by day (SPEC §11).

Insights report the last 72 h partly attributed; this is the final truth the simulator holds, so
the value of a policy over N days ("fully attributed purchase value of those days") can be read
as soon as the days have passed. One row per ad set and local day, ad sets that did not deliver
included (zeros), so frames of two runs line up row by row.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from budget_pipeline.sources.simulated.account import SimulatedAccount

DELIVERY_SCHEMA = {
    "date": pl.Date(),
    "pool": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "adset_id": pl.Utf8(),
    "spend_minor": pl.Int64(),
    "spend": pl.Float64(),  # major units
    "conversions": pl.Float64(),  # final counts (expected values with noise="none")
    "purchase_value": pl.Float64(),  # final, major units
}


def delivery(account: SimulatedAccount, start: date, end: date) -> pl.DataFrame:
    """Final spend, conversions and purchase value per ad set and day, ``start``..``end``.

    Both dates are account-local and inclusive; every day must have ended by ``now`` (the
    truth of a day is known once it is over). Sorted by date, then ad set id.
    """
    first = account.scenario.start
    if start < first:
        raise ValueError(f"start date {start} is before the simulated history ({first})")
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    if end >= account.now.date():
        raise ValueError(
            f"day {end} has not ended at the account clock {account.now.isoformat()}: "
            "advance the clock past it first"
        )
    lo, hi = (start - first).days, (end - first).days + 1
    days = account._simulated_days(lo, hi)
    n = len(account._adset_ids)
    spend = np.stack([d.day_spend for d in days])  # days × ad sets, minor units
    conversions = np.stack([d.conversions.sum(axis=1) for d in days])
    value = np.stack([d.value.sum(axis=1) for d in days])
    factor = account._factor
    dates = pl.date_range(start, end, interval="1d", eager=True)
    campaigns = [account._campaign_ids[c] for c in account._adset_campaign]
    return pl.DataFrame(
        {
            "date": dates.gather(np.repeat(np.arange(hi - lo), n)),
            "pool": np.tile(np.array(account._adset_pool, dtype=object), hi - lo),
            "campaign_id": np.tile(np.array(campaigns, dtype=object), hi - lo),
            "adset_id": np.tile(np.array(account._adset_ids, dtype=object), hi - lo),
            "spend_minor": spend.ravel(),
            "spend": spend.ravel() / factor,
            "conversions": conversions.ravel().astype(np.float64),
            "purchase_value": value.ravel(),
        },
        schema=DELIVERY_SCHEMA,
    )


def delivery_since(account: SimulatedAccount, days: int) -> pl.DataFrame:
    """:func:`delivery` of the ``days`` days after the scenario's history (the simulated run)."""
    end = account.scenario.end + timedelta(days=days - 1)
    return delivery(account, account.scenario.end, end)


def per_pool_day(frame: pl.DataFrame) -> pl.DataFrame:
    """Spend and value summed per date and pool from a :func:`delivery` frame."""
    return (
        frame.group_by("date", "pool")
        .agg(
            pl.col("spend_minor").sum(),
            pl.col("spend").sum(),
            pl.col("conversions").sum(),
            pl.col("purchase_value").sum(),
        )
        .sort("date", "pool")
    )
