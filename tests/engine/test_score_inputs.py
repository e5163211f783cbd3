"""What the scores read, the cheap way, against the hourly queries it replaces.

``baselines.score_inputs`` checks the rollup once for everything it reads, sums the 7-day
spend volume alone (``window_spend``) unless a window of that length is read anyway, and
stages the per-ad-set lookbacks as a frame whose baseline query returns the active days as
a mask decoded in numpy (``_day_offsets``). The oracle is the pre-rollup hourly SQL
(``tests/review12/oracle``, verbatim from the repository's history) composed as the decision
step composed it before: every window and the volume window in one window query, the
lookbacks from its 7-day rows, the baselines with the lookbacks passed as lists. Both sum
exactly (DECIMAL), so the frames must be equal to the bit, row order and dtypes included.
"""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hourly_insights import START, random_hours, warehouse
from polars.testing import assert_frame_equal
from review12.oracle_helpers import old_query, old_window_metrics

from budget_pipeline.config.pools import Settings
from budget_pipeline.engine.baselines import (
    BASELINES,
    VOLUME_WINDOW_HOURS,
    _day_offsets,
    entity_lookbacks,
    longest_lookback,
    score_inputs,
)
from budget_pipeline.engine.insight_pieces import StaleRollupError
from budget_pipeline.engine.insight_sums import (
    WINDOW_SPEND,
    _time_bounds,
    window_metrics,
    window_spend,
)

DAYS = 60
# c0 holds its ad sets' budget (CBO): they share one volume and so one lookback
ENTITIES = pl.DataFrame(
    {
        "entity_id": ["c0", "c1"],
        "entity_type": ["campaign", "campaign"],
        "budget_type": ["daily", None],
    }
)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = warehouse(tmp_path_factory.mktemp("inputs") / "w.duckdb", random_hours(7, DAYS, 10))
    yield con
    con.close()


def old_baselines(con, points, baseline_days: int, lookbacks: pl.DataFrame) -> pl.DataFrame:
    """The hourly baseline query with per-pair lookbacks passed as three lists."""
    each = lookbacks["lookback_hours"].to_list()
    lo, hi = _time_bounds(points, max(each, default=0) + 24 * baseline_days)
    params = {
        "eval_points": points,
        "baseline_days": baseline_days,
        "lookback_hours": None,
        "lookback_adset_ids": lookbacks["adset_id"].to_list(),
        "lookback_as_ofs": lookbacks["as_of"].to_list(),
        "lookback_hours_each": each,
        "lo": lo,
        "hi": hi,
    }
    return old_query(con, "select_entity_baselines", params, BASELINES)


def old_score_inputs(con, points, settings: Settings, windows: list[int]):
    """The decision step's reads before: one window query with the volume window in it."""
    volume = set() if settings.lookback_hours else {VOLUME_WINDOW_HOURS}
    every = old_window_metrics(con, points, sorted({*windows, *volume}))
    metrics = every.filter(pl.col("window_hours").is_in(windows))
    if settings.lookback_hours:  # one length for every ad set
        lo, hi = _time_bounds(points, settings.lookback_hours + 24 * settings.baseline_days)
        params = {
            "eval_points": points,
            "baseline_days": settings.baseline_days,
            "lookback_hours": settings.lookback_hours,
            "lookback_adset_ids": [],
            "lookback_as_ofs": [],
            "lookback_hours_each": [],
            "lo": lo,
            "hi": hi,
        }
        return metrics, old_query(con, "select_entity_baselines", params, BASELINES)
    recent = every.filter(pl.col("window_hours") == VOLUME_WINDOW_HOURS)
    lookbacks = entity_lookbacks(con, points, settings, ENTITIES, recent)
    return metrics, old_baselines(con, points, settings.baseline_days, lookbacks)


CASES = [
    # (points as (day, hour, minute) after START, settings, windows)
    ([(50, 0, 0)], Settings(), [48, 72, 96]),  # the daily cycle: midnight, whole days
    ([(50, 0, 0)], Settings(), [48, 72, 96, 168]),  # the volume window read anyway
    ([(44, 13, 0), (45, 0, 0), (47, 12, 0)], Settings(), [24, 48, 72, 96]),
    ([(52, 5, 30)], Settings(baseline_days=64), [48, 72, 96]),  # the mask's second word
    ([(46, 0, 0), (49, 7, 0)], Settings(lookback_hours=60, baseline_days=14), [60, 168]),
    ([(40, 0, 0)], Settings(baseline_days=7), [48, 72, 96]),
]


@pytest.mark.parametrize(("when", "settings", "windows"), CASES)
def test_score_inputs_equal_the_hourly_queries(con, when, settings, windows):
    points = [START + timedelta(days=d, hours=h, minutes=m) for d, h, m in when]
    got_windows, got_baselines = score_inputs(con, points, settings, windows, ENTITIES)
    want_windows, want_baselines = old_score_inputs(con, points, settings, sorted(windows))
    assert got_windows.height > 0 and got_baselines.height > 0
    assert_frame_equal(got_windows, want_windows, check_exact=True)
    assert_frame_equal(got_baselines, want_baselines, check_exact=True)


def test_window_spend_is_the_spend_of_window_metrics(con):
    rng = random.Random(3)
    for _ in range(6):
        points = sorted(
            START + timedelta(days=rng.randint(20, DAYS), hours=rng.choice([0, 0, 7, 12, 23]))
            for _ in range(rng.randint(1, 3))
        )
        hours = rng.choice([VOLUME_WINDOW_HOURS, 30, 72, 24 * 21])
        want = window_metrics(con, points, [hours]).select(list(WINDOW_SPEND))
        assert_frame_equal(window_spend(con, points, hours), want, check_exact=True)


@pytest.mark.parametrize("days", [7, 30, 62, 63, 64, 90])
def test_day_offsets_lists_the_bits_of_the_mask(days):
    rng = np.random.default_rng(days)
    masks = [0, (1 << days) - 1, 1, 1 << (days - 1)]
    masks += [
        int(rng.integers(0, 1 << 62)) << 64 | int(rng.integers(0, 1 << 62)) for _ in range(300)
    ]
    masks = [m & ((1 << days) - 1) for m in masks]
    lo = np.array([m & ((1 << 63) - 1) for m in masks], dtype=np.int64)
    hi = np.array([m >> 63 for m in masks], dtype=np.int64)
    got = _day_offsets(lo, hi, days)
    assert got.dtype == pl.List(pl.Int64)
    assert got.to_list() == [[d for d in range(days) if m >> d & 1] for m in masks]


@pytest.mark.parametrize("days_back", [3, 6, 20])
def test_score_inputs_refuses_a_stale_rollup_anywhere_it_reads(tmp_path, days_back):
    # an hour deleted behind the rollup's back: in the windows (3 days back), only in the
    # volume window (6) or only in the baseline days (20): the one check covers them all
    con = warehouse(tmp_path / "w.duckdb", random_hours(8, 40))
    as_of = START + timedelta(days=38)
    settings = Settings()
    score_inputs(con, [as_of], settings, [48, 72, 96], ENTITIES)  # fresh: reads
    assert 24 * days_back < longest_lookback(settings) + 24 * settings.baseline_days
    con.execute(
        "DELETE FROM insights WHERE adset_id = 'a0' AND ts = $ts",
        {"ts": as_of - timedelta(days=days_back, hours=-10)},
    )
    with pytest.raises(StaleRollupError):
        score_inputs(con, [as_of], settings, [48, 72, 96], ENTITIES)


def test_score_inputs_inside_a_transaction_read_its_uncommitted_writes(tmp_path):
    # outside a transaction the window metrics are read on a second cursor, beside the
    # baselines; a cursor does not see a caller's uncommitted writes, so inside one every
    # query must run on the caller's connection
    con = warehouse(tmp_path / "w.duckdb", random_hours(9, 40))
    as_of = START + timedelta(days=38)
    settings = Settings()
    before_windows, before_baselines = score_inputs(con, [as_of], settings, [48, 72], ENTITIES)
    assert "a0" in before_windows["adset_id"] and "a0" in before_baselines["adset_id"]
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM insights WHERE adset_id = 'a0'")
    con.execute("DELETE FROM insights_daily WHERE adset_id = 'a0'")
    got_windows, got_baselines = score_inputs(con, [as_of], settings, [48, 72], ENTITIES)
    want_windows, want_baselines = old_score_inputs(con, [as_of], settings, [48, 72])
    con.execute("ROLLBACK")
    assert "a0" not in got_windows["adset_id"] and "a0" not in got_baselines["adset_id"]
    assert_frame_equal(got_windows, want_windows, check_exact=True)
    assert_frame_equal(got_baselines, want_baselines, check_exact=True)
    # and after the rollback, read beside each other again: the committed rows
    again_windows, again_baselines = score_inputs(con, [as_of], settings, [48, 72], ENTITIES)
    assert_frame_equal(again_windows, before_windows, check_exact=True)
    assert_frame_equal(again_baselines, before_baselines, check_exact=True)


def test_a_stale_rollup_is_reported_before_what_the_baselines_side_then_failed_on(tmp_path):
    # the rollup is checked on the second cursor, beside the baselines: when the baselines
    # side fails too (here on entities without budget_type), the stale rollup is the error
    con = warehouse(tmp_path / "w.duckdb", random_hours(8, 40))
    as_of = START + timedelta(days=38)
    settings = Settings()
    broken = ENTITIES.drop("budget_type")
    with pytest.raises(pl.exceptions.ColumnNotFoundError):  # fresh: the baselines' own error
        score_inputs(con, [as_of], settings, [48, 72, 96], broken)
    con.execute(
        "DELETE FROM insights WHERE adset_id = 'a0' AND ts = $ts",
        {"ts": as_of - timedelta(days=3, hours=-10)},
    )
    with pytest.raises(StaleRollupError):
        score_inputs(con, [as_of], settings, [48, 72, 96], broken)
