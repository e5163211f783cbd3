"""Rows grouped by budget holder: each holder's days together, oldest first.

The response curves read a holder's days in date order (the day before, the last week's
median), so their rows must come grouped. Sorting half a million rows by a string id costs
more than the rest of the fit at 10k ad sets. :func:`holder_days` groups the ad-set days of
``daily_performance`` (in no particular order) per holder on integer keys: each row's holder
number (one hash lookup of its ad set) and its day, placed in one pass when no holder has two
rows a day; the work then keys on each holder's run of rows (an integer, in row order) instead
of its id. :func:`holder_runs` does the same for a per-holder frame: it checks in one pass that
the rows come grouped and sorts only a frame that does not."""

from __future__ import annotations

import numpy as np
import polars as pl

from budget_pipeline.engine.entity_keys import per_distinct

WEEK = 7  # days in the window of :func:`reaches_share_of_week_median`
SUMS = ("spend", "conversions", "purchase_value")
# the longest run (a CBO campaign's ad sets on one day) summed with the compensated loop; polars'
# group sum equals it up to 1,024 rows a group (measured, polars 2.1)
KAHAN_RUNS = 64
HOLDER_DAYS: dict[str, pl.DataType] = {
    "run": pl.UInt32(),
    "date": pl.Date(),
    "spend": pl.Float64(),
    "conversions": pl.Float64(),
    "purchase_value": pl.Float64(),
}


def holder_days(daily: pl.DataFrame, holders: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """Ad-set days (adset_id, campaign_id, date and :data:`SUMS`, in any order) per budget
    holder (``holders``: holder_id, entity_type 'adset' | 'campaign'): an ad set holding its
    own budget keeps its rows, a CBO campaign's days are summed over its ad sets.

    Returns :data:`HOLDER_DAYS`, each holder's rows together and oldest first (the ad sets by
    id, then the campaigns by id; an unknown day first), ``run`` numbering the holders 0, 1,
    ... in row order; and each run's holder id. An ad set's rows pass as they are (two rows of
    one day stay two, in their order); a campaign's day sums its ad sets' in id order
    (:func:`_run_sums`). A row neither kind holds is left out."""
    dates = daily["date"].cast(pl.Date)
    day = dates.to_physical().cast(pl.Int64)  # an unknown day before every known one
    day = day.fill_null(day.min() - 1 if day.null_count() < day.len() else 0)
    ids = holders["holder_id"].drop_nulls().unique().sort()
    campaigns = holders.filter(pl.col("entity_type") == "campaign")["holder_id"]
    campaigns = campaigns.drop_nulls().unique().sort()
    # unknown (null: the row left out) where the campaign is missing
    in_cbo = (
        per_distinct(daily["campaign_id"], lambda v: v.is_in(campaigns.implode()).cast(pl.Int64))
        == 1
    )
    number = _numbers(daily["adset_id"], ids)
    rows, holder, run = _by_holder_and_day(
        number, day, (~in_cbo & number.is_not_null()).fill_null(False), ids.len()
    )
    rows = rows.astype(np.intp, copy=False)  # an index numpy converts once, not per column
    own = {"run": run, "date": _gather(dates, rows)} | {n: _gather(daily[n], rows) for n in SUMS}
    # a campaign's ad sets: by campaign, day and ad set id, each day's summed
    day = day.to_numpy()
    rows = np.flatnonzero(in_cbo.fill_null(False).to_numpy())
    adsets = daily["adset_id"].gather(rows)
    adset = per_distinct(adsets, _ranks).fill_null(-1).to_numpy()
    campaign = _numbers(daily["campaign_id"].gather(rows), campaigns).to_numpy()
    order = _order(campaign, day[rows], adset)
    rows, campaign = rows[order], campaign[order]
    first = run_starts(campaign * (int(day.max(initial=0) - day.min(initial=0)) + 1) + day[rows])
    cbo_run = _run_numbers(campaign[first])
    cbo = {
        "run": cbo_run + (int(run[-1]) + 1 if run.size else 0),
        "date": dates.gather(rows[first]),
    } | {name: _run_sums(daily[name].gather(rows), first) for name in SUMS}
    # each part cast before the concat: an ad set's own sums keep the dtype they came in
    # (integer spend, say), a campaign's are Float64 (:func:`_run_sums`)
    days = pl.concat(
        [
            pl.DataFrame(part).select(list(HOLDER_DAYS)).cast(HOLDER_DAYS)  # type: ignore[arg-type]
            for part in (own, cbo)
        ]
    )
    run_ids = pl.concat(
        [
            ids.gather(holder),
            campaigns.gather(campaign[first][run_starts(cbo_run)]),
        ]
    )
    if run_ids.n_unique() < run_ids.len():  # an ad set's id is also a CBO campaign's
        frame, runs = holder_runs(days.with_columns(holder_id=run_ids.gather(days["run"])))
        run_ids = frame["holder_id"].gather(run_starts(runs.to_numpy()))
        days = frame.with_columns(run=runs).select(list(HOLDER_DAYS))
    return days, run_ids


def _run_numbers(keys: np.ndarray) -> np.ndarray:
    """0, 1, ... per run of equal ``keys``."""
    run = np.zeros(keys.size, dtype=np.uint32)
    np.cumsum(keys[1:] != keys[:-1], out=run[1:])
    return run


def _numbers(values: pl.Series, ids: pl.Series) -> pl.Series:
    """Each value's position in ``ids`` (distinct strings, no null), null where it is none of
    them: a non-strict cast to the enum of ``ids``, whose physical code is that position (at
    10k ad sets 6.7 ms over the 560k ad-set days, a left join 9.5 ms); once per distinct id
    where the ids come dictionary-encoded (:func:`~budget_pipeline.engine.entity_keys.per_distinct`:
    daily_performance's ids: 2.7 ms over the 560k ad-set days, measured alone)."""
    return per_distinct(
        values, lambda v: v.cast(pl.Enum(ids), strict=False).to_physical().cast(pl.Int64)
    )


def _ranks(values: pl.Series) -> pl.Series:
    """Each value's position among the distinct values sorted (null for none)."""
    return _numbers(values, values.drop_nulls().unique().sort())


def _order(campaign: np.ndarray, day: np.ndarray, adset: np.ndarray) -> np.ndarray:
    """The rows sorted by campaign, day, then ad set (``np.lexsort`` of the three), as one
    stable sort of a combined integer key where it fits in 63 bits (83 against 45 ms over
    560k rows)."""
    if not campaign.size:
        return np.zeros(0, dtype=np.intp)
    lo_day, lo_adset = int(day.min()), int(adset.min())
    days, adsets = int(day.max()) - lo_day + 1, int(adset.max()) - lo_adset + 1
    if (int(campaign.max()) + 1) * days * adsets >= 2**62:
        return np.lexsort((adset, day, campaign))
    key = (campaign.astype(np.int64) * days + (day - lo_day)) * adsets + (adset - lo_adset)
    return np.argsort(key, kind="stable")


def _run_sums(values: pl.Series, first: np.ndarray) -> np.ndarray:
    """The sum of each run of ``values`` (runs starting at ``first``), missing values skipped,
    0 for none: :func:`_kahan_sums` where no run is longer than :data:`KAHAN_RUNS` (the old
    code's polars group sums to the bit, one numpy step per row of the longest run: a CBO
    campaign's ad sets on a day); past that, plain sums in row order (``np.add.reduceat``):
    the loop took 0.26 s for a campaign of 10k ad sets, and polars' group sum of a group past
    1,024 rows depends on the frame around it. The rows come sorted (campaign, day, ad set),
    so either way the same rows in any order give the same bits."""
    size = np.diff(np.r_[first, len(values)])
    if int(size.max(initial=0)) <= KAHAN_RUNS:
        return _kahan_sums(values, first)
    x = values.cast(pl.Float64).fill_null(0.0).to_numpy()
    return np.add.reduceat(x, first) if first.size else np.zeros(0)


def _kahan_sums(values: pl.Series, first: np.ndarray) -> np.ndarray:
    """The sum of each run of ``values`` (runs starting at ``first``): compensated (Kahan), in
    row order, missing values skipped (0 for none), as polars sums a group spread over a frame
    (the CBO days the old code summed: the same to the bit at 10k ad sets and in the tests).
    One step per row of the longest run (a campaign's ad sets), over every run at once."""
    x = values.cast(pl.Float64).to_numpy()
    known = values.is_not_null().to_numpy()
    size = np.diff(np.r_[first, x.size])
    total, carry = np.zeros(first.size), np.zeros(first.size)
    for step in range(int(size.max(initial=0))):
        run = np.flatnonzero(size > step)
        row = first[run] + step
        run, row = run[known[row]], row[known[row]]
        y = x[row] - carry[run]
        t = total[run] + y
        carry[run] = (t - total[run]) - y
        total[run] = t
    return total


def _gather(values: pl.Series, rows: np.ndarray) -> pl.Series:
    """``values[rows]``, in numpy where no value is missing (a third of polars' time)."""
    if values.null_count() or not (values.dtype.is_numeric() or values.dtype.is_temporal()):
        return values.gather(rows)
    return pl.Series(values.name, values.to_physical().to_numpy()[rows]).cast(values.dtype)


def _by_holder_and_day(
    number: pl.Series, day: pl.Series, keep: pl.Series, holders: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows ``keep`` selects sorted by holder ``number`` (0 .. ``holders`` - 1), then
    ``day``, rows of equal keys in their order; each holder's number and each row's run.

    Each row is put in its (holder, day) cell in one pass where no two share one (an ad set's
    days), sorted (stable) otherwise or where the cells would far outnumber the rows. Few and
    narrow arrays: at 10k ad sets fresh memory costs as much as the work (page faults)."""
    rows = keep.arg_true().to_numpy()
    if not rows.size:
        return rows, rows, rows.astype(np.uint32)
    lo, span = day.min(), day.max() - day.min() + 1
    key = (number * span + (day - lo)).filter(keep).to_numpy()
    none, per_holder = np.iinfo(np.uint32).max, None
    if holders * span <= 4 * rows.size + 4096 and rows.size < none:
        slot = np.full(holders * span, none, dtype=np.uint32)
        slot[key] = rows
        taken = slot != none
        if np.count_nonzero(taken) == rows.size:  # no cell taken twice
            rows, per_holder = slot[taken], taken.reshape(holders, span).sum(axis=1)
    if per_holder is None:
        rows, per_holder = rows[np.argsort(key, kind="stable")], np.bincount(key // span)
    holder = np.flatnonzero(per_holder)
    run = np.repeat(np.arange(holder.size, dtype=np.uint32), per_holder[holder])
    return rows, holder, run


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
