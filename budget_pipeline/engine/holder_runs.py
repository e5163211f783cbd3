"""Rows grouped by budget holder: each holder's days together, oldest first.

The response curves read a holder's days in date order (the day before, the last week's
median), so their rows must come grouped. Sorting half a million rows by a string id costs
more than the rest of the fit at 10k ad sets, and the rows nearly always come grouped already
(daily_performance orders by ad set and date): :func:`holder_runs` checks that in one pass and
sorts only a frame that is not, and the work then keys on each holder's run of rows (an
integer, in row order) instead of its id."""

from __future__ import annotations

import numpy as np
import polars as pl

WEEK = 7  # days in the window of :func:`reaches_share_of_week_median`


def holder_runs(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` (holder_id, date, ...) with each holder's rows together and its dates
    ascending, and each row's run number (0, 1, ... in row order, one per holder).

    Checked, not assumed: a frame already so is returned as it is (a few milliseconds at 10k
    ad sets); any other (a holder's rows apart, a date out of order or unknown) is sorted by
    holder_id and date."""
    run = frame["holder_id"].rle_id()
    runs = run.to_numpy()
    starts = run_starts(runs)
    days = frame["date"].to_physical().to_numpy()
    grouped = (
        frame["date"].null_count() == 0
        and frame["holder_id"].gather(starts).n_unique() == starts.size
        and not np.any((runs[1:] == runs[:-1]) & (days[1:] < days[:-1]))
    )
    if not grouped:
        frame = frame.sort("holder_id", "date")
        run = frame["holder_id"].rle_id()
    return frame, run.set_sorted()


def run_starts(runs: np.ndarray) -> np.ndarray:
    """The first row of each run of equal numbers."""
    if not runs.size:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])


def reaches_share_of_week_median(values: np.ndarray, first: np.ndarray, share: float) -> np.ndarray:
    """Whether each row's value (> 0; rows in runs starting at ``first``, in order) is at least
    ``share`` (> 0) of the median of its run's last 7 rows, itself included (fewer at the run's
    start): ``values >= share * values.rolling_median(7, min_samples=1).over(run)`` in polars,
    to the bit, without a sorted window per row (2.3 ms at 10k ad sets, the polars rolling
    median per holder id 31 ms).

    A full window's median is its 4th smallest value, and ``x -> share * x`` keeps the order
    (rounding included), so a row reaches it exactly when at least 4 of the 7 scaled values are
    at most its own: six shifted comparisons. A run's first six rows sort their few values (an
    even window's median is polars', ``lower + 0.5 * (upper - lower)``)."""
    size = np.diff(np.r_[first, values.size])
    scaled = share * values
    at_most = (scaled <= values).astype(np.int8)
    for lag in range(1, WEEK):
        at_most[lag:] += scaled[:-lag] <= values[lag:]
    reached = at_most > WEEK // 2
    for row in range(WEEK - 1):  # a run's (row + 1)-th: the median of its first rows
        rows = first[size > row] + row
        window = np.sort(values[rows[:, None] - np.arange(row + 1)], axis=1)
        lower, upper = window[:, row // 2], window[:, (row + 1) // 2]
        reached[rows] = values[rows] >= share * (lower + 0.5 * (upper - lower))
    return reached
