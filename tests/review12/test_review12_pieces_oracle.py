"""Review 12: the pieces-based decision queries against the hourly queries they replaced.

The change claims bit-identical results "for any evaluation point/window/lookback". The
repository's own test compares pieces with the *new* SQL over hours only (every date an edge
date), so a defect shared by both paths (the active-day split of ``select_entity_baselines``)
cannot show there; here the oracle is the old SQL (``oracle/``), on the same file.

Finding (failed until fixed after the review): at an evaluation point that is not on the hour (``entity_baselines`` accepts
any datetime and the old query handled it), the baseline's active days differ. The split of a
day's ``spent_hours`` at ``hour(baseline_end)`` assumes ``baseline_end`` is on the hour: with
``baseline_end`` = D 05:30, the hour 05:00 of each day lies in the slot *before* the split
(``baseline_end - 05:00 - 1 µs`` = 29 min, slot ``day_back``), but the query puts it one slot
later, and on D itself drops it (slot -1).

Guards (pass): window metrics and daily performance at points with minutes/seconds, windows
with half-hour middles, lookbacks that are not multiples of 24 h, 63/64/65/90 baseline days
(the 128-bit mask), on-the-hour baselines.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import polars as pl
import pytest
from hourly_insights import START, random_hours, warehouse
from polars.testing import assert_frame_equal
from review12.oracle_helpers import (
    old_daily_performance,
    old_entity_baselines,
    old_window_metrics,
)

from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.signals import entity_baselines, window_metrics

DAYS = 100


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = warehouse(tmp_path_factory.mktemp("oracle") / "w.duckdb", random_hours(11, DAYS))
    yield con
    con.close()


def _point(r: random.Random, minutes: bool) -> datetime:
    extra = timedelta(minutes=r.choice([0, 1, 30, 59]), seconds=r.choice([0, 7])) if minutes else 0
    return (
        START + timedelta(days=r.randint(92, DAYS), hours=r.randint(0, 23)) + (extra or timedelta())
    )


def test_one_hour_spent_at_the_split_hour_is_the_same_active_day_as_the_hourly_query(tmp_path):
    # one ad set spending only at 05:00, every day; the point is 06:30 (a 1-hour lookback puts
    # the baseline's end at 05:30): each 05:00 hour is 29 minutes (+ whole days) before it
    hours = pl.DataFrame(
        {
            "ts": pl.datetime_range(
                datetime(2024, 3, 1, 5), datetime(2024, 3, 10, 5), "1d", eager=True
            ),
        }
    ).with_columns(
        campaign_id=pl.lit("c"),
        adset_id=pl.lit("a"),
        spend=pl.lit(10.0),
        impressions=pl.lit(100),
        reach=pl.lit(50),
        clicks=pl.lit(2),
        conversions=pl.lit(1.0),
        purchase_value=pl.lit(30.0),
        conversions_est=pl.lit(None, pl.Float64),
        purchase_value_est=pl.lit(None, pl.Float64),
        date=pl.col("ts").dt.date(),
        hour=pl.col("ts").dt.hour().cast(pl.Int8),
        pulled_at=pl.col("ts"),
    )
    con = warehouse(tmp_path / "w.duckdb", hours)
    as_of = datetime(2024, 3, 9, 6, 30)
    got = entity_baselines(con, [as_of], baseline_days=3, lookback_hours=1)
    want = old_entity_baselines(con, [as_of], 3, 1)
    # the old query: 05:00 of Mar 9, 8 and 7 are in the 3 slots before 05:30 Mar 9 -> [0, 1, 2]
    assert want["baseline_active_day_offsets"].to_list() == [[0, 1, 2]]
    assert got["baseline_active_day_offsets"].to_list() == [[0, 1, 2]]
    assert_frame_equal(got, want, check_exact=True)


def test_baselines_equal_the_hourly_query_at_points_off_the_hour(con):
    r = random.Random(5)
    for _ in range(25):
        points = [_point(r, minutes=True), _point(r, minutes=True)]
        lookback, days = r.randint(1, 130), r.choice([1, 7, 30])
        got = entity_baselines(con, points, baseline_days=days, lookback_hours=lookback)
        want = old_entity_baselines(con, points, days, lookback)
        assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("minutes", [False, True], ids=["on-the-hour", "off-the-hour"])
def test_windows_and_daily_performance_equal_the_hourly_queries(con, minutes):
    r = random.Random(7 + minutes)
    for _ in range(25):
        as_of = _point(r, minutes)
        points = [as_of, as_of - timedelta(hours=r.randint(1, 300))]
        windows = r.sample(range(1, 400), 3)  # odd ones put the middle on a half hour
        assert_frame_equal(
            window_metrics(con, points, windows),
            old_window_metrics(con, points, windows),
            check_exact=True,
        )
        days = r.randint(1, 90)
        assert_frame_equal(
            daily_performance(con, as_of, days)
            .with_columns(pl.col("adset_id", "campaign_id").cast(pl.String))  # dictionary-coded
            .sort("adset_id", "date"),  # in no order
            old_daily_performance(con, as_of, days),
            check_exact=True,
        )


@pytest.mark.parametrize("baseline_days", [63, 64, 65, 90])
def test_long_baselines_on_the_hour_equal_the_hourly_query(con, baseline_days):
    r = random.Random(baseline_days)
    for _ in range(6):
        points = [_point(r, minutes=False), _point(r, minutes=False)]
        lookback = r.choice([1, 23, 25, 47, 72, 130])
        got = entity_baselines(con, points, baseline_days=baseline_days, lookback_hours=lookback)
        want = old_entity_baselines(con, points, baseline_days, lookback)
        assert got.height > 0
        assert_frame_equal(got, want, check_exact=True)
