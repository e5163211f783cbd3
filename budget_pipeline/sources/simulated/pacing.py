"""Budget pacing of a daily budget, as Meta documents it.

Meta's help page "About daily budgets" (Meta Business Help Centre,
https://www.facebook.com/business/help/190490051321426) says a daily budget is an average over a
calendar week (Sunday to Saturday): on a good day Meta may spend up to 75 % more than the daily
budget, but in a week it never spends more than 7 × the daily budget. Its FAQ on mid-week
changes (quoted at https://support.adphorus.com/en/articles/69135-what-is-average-daily-budget):
"If you change your budget in the middle of the week, [Meta] calculates a new amount to spend for
the rest of that week, based on the new budget and the amount of time remaining for that week",
e.g. $10/day from Sunday, switched to $20 at 00:00 on Wednesday: "$80 over 4 days"; what was
spent before the change does not count against it. The first week of an ad set is prorated from
its start the same way.

The model, in *days of budget* (spend ÷ the daily budget in effect that hour, so a campaign
budget shared by CBO delivery is paced the same way):

- each ad set has a weekly allowance of 7 days of budget, used up by its delivery;
- at 00:00 on Sunday the allowance starts afresh;
- a budget change (of the ad set, or of its CBO campaign) at an hour restarts the allowance as if
  the days before it had been used exactly: what is left is the time remaining in the week,
  whatever was spent before. A cut on Friday therefore leaves 2 days of the *new* budget, never
  less (the old "7 × current budget − week-to-date spend" cap stopped delivery instead);
- one day spends at most 1.75 days of budget.
"""

from __future__ import annotations

import numpy as np

HOURS_PER_DAY = 24
WEEK_DAYS = 7.0  # at most 7 days of budget per calendar week
MAX_DAY_OVERSPEND = 1.75  # Meta may spend up to 75 % over the daily budget on one day


def week_elapsed_days(weekday: int) -> int:
    """Whole days of the Sunday-to-Saturday week before a day (``date.weekday()``, Monday = 0)."""
    return (weekday + 1) % 7


def pace_day(
    planned: np.ndarray,
    reset: np.ndarray,
    week_used: np.ndarray,
    elapsed_days: int,
    weekly: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Deliver one day under the daily and weekly caps, in days of budget.

    ``planned`` (ad sets × 24) is what delivery would spend each hour, in days of the budget in
    effect; ``reset`` marks the hours at which an ad set's weekly allowance restarts (a budget
    change taking effect); ``week_used`` is each ad set's allowance used before this day;
    ``elapsed_days`` the whole days of the week before it; ``weekly`` masks the ad sets paced
    weekly (lifetime budgets are not). Returns the delivered days of budget per hour and the
    allowance used at the end of the day.
    """
    n, hours = planned.shape
    hour = np.arange(hours)
    # Each hour belongs to the piece started by the last reset at or before it (-1: the day start).
    piece = np.maximum.accumulate(np.where(reset, hour[None, :], -1), axis=1)
    cum = np.cumsum(planned, axis=1)
    rows = np.arange(n)[:, None]
    before = np.where(piece >= 1, cum[rows, np.maximum(piece - 1, 0)], 0.0)
    used_at_piece = np.where(
        piece >= 0, elapsed_days + piece / HOURS_PER_DAY, week_used[:, None].astype(np.float64)
    )
    allowance = np.where(weekly[:, None], np.maximum(WEEK_DAYS - used_at_piece, 0.0), np.inf)
    in_piece = np.minimum(cum - before, allowance)
    prev_in_piece = np.concatenate([np.zeros((n, 1)), in_piece[:, :-1]], axis=1)
    starts_piece = (piece == hour[None, :]) | (hour[None, :] == 0)
    delivered = np.where(starts_piece, in_piece, in_piece - prev_in_piece)
    day_cum = np.minimum(np.cumsum(delivered, axis=1), MAX_DAY_OVERSPEND)
    delivered = np.diff(day_cum, axis=1, prepend=0.0)
    # The day cap only lowers hours, so the allowance used follows the delivered hours.
    last_piece = piece[:, -1]
    tail = hour[None, :] >= np.maximum(last_piece, 0)[:, None]
    used_end = np.where(last_piece >= 0, elapsed_days + last_piece / HOURS_PER_DAY, week_used)
    used_end = used_end + np.where(tail, delivered, 0.0).sum(axis=1)
    return delivered, used_end
