"""The decision queries read whole days from the ``insights_daily`` rollup and only the hours
of the dates their bounds cut. Their results must equal, to the bit, the same queries over
hours alone (every date passed as an edge date: no day pieces), whatever the evaluation
point's hour, the window lengths (odd ones put the middle on a half hour) and lookbacks, gaps
and hours without spend. A write that bypasses the merge is refused, not read as missing days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest
from hourly_insights import START, random_hours, warehouse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from budget_pipeline import insights_rollup
from budget_pipeline.engine import baselines, insight_pieces, insight_sums, response_curves
from budget_pipeline.engine.insight_pieces import StaleRollupError, edge_dates, noon_dates
from budget_pipeline.engine.insight_sums import window_spend
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.signals import entity_baselines, window_metrics

DAYS = 20
HOURS = random_hours(3, DAYS)


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    return warehouse(tmp_path_factory.mktemp("pieces") / "warehouse.duckdb", HOURS)


def _active_days(pairs: pl.DataFrame, baseline_days: int) -> pl.DataFrame:
    """From the hours themselves: the pairs with any hour in [baseline start, as_of), and the
    24-hour slots (counted back from the baseline's end) with spend."""
    bounds = pairs.with_columns(
        end=pl.col("as_of") - pl.duration(hours=pl.col("lookback_hours"))
    ).with_columns(start=pl.col("end") - pl.duration(days=baseline_days))
    hit = bounds.join(HOURS, on="adset_id").filter(
        pl.col("ts") >= pl.col("start"), pl.col("ts") < pl.col("as_of")
    )
    offset = ((pl.col("end") - pl.col("ts")).dt.total_microseconds() - 1) // 86_400_000_000
    spent = (pl.col("ts") < pl.col("end")) & (pl.col("spend") > 0)
    return (
        hit.group_by("adset_id", "as_of")
        .agg(offset.filter(spent).unique().sort().alias("offsets"))
        .sort("as_of", "adset_id")
    )


def _hours_with_spend(points, windows) -> pl.DataFrame:
    grid = pl.DataFrame({"as_of": points}).join(
        pl.DataFrame({"window_hours": windows}), how="cross"
    )
    hit = grid.join(HOURS, how="cross").filter(
        pl.col("ts") >= pl.col("as_of") - pl.duration(hours=pl.col("window_hours")),
        pl.col("ts") < pl.col("as_of"),
    )
    return (
        hit.group_by("adset_id", "as_of", "window_hours")
        .agg(hours_with_spend=(pl.col("spend") > 0).sum().cast(pl.Int64))
        .sort("as_of", "window_hours", "adset_id")
    )


def _every_date_an_edge(bounds, **_):
    """Every date from the first bound to the last: no day pieces, hours only."""
    days = [b for b in bounds if b is not None]
    first, last = min(days).date(), max(days).date()
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def _hours_only(monkeypatch):
    for module in (insight_sums, baselines, response_curves):
        monkeypatch.setattr(module, "edge_dates", _every_date_an_edge)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    day=st.integers(12, DAYS),
    hour=st.integers(0, 23),
    windows=st.lists(st.integers(1, 200), min_size=1, max_size=4, unique=True),
    lookbacks=st.lists(st.integers(1, 130), min_size=5, max_size=5),
    baseline_days=st.integers(1, 9),
    curve_days=st.integers(1, 11),
)
def test_day_pieces_give_the_hourly_sums_to_the_bit(
    con, monkeypatch, day, hour, windows, lookbacks, baseline_days, curve_days
):
    as_of = START + timedelta(days=day, hours=hour)
    points = [as_of, as_of - timedelta(hours=7 * hour + 5)]  # two points, any hours
    pairs = pl.DataFrame(
        {
            "adset_id": ["a0", "a1", "a2", "a3", "a4"],
            "as_of": [points[0], points[1], points[0], points[1], points[0]],
            "lookback_hours": lookbacks,
        },
        schema_overrides={"lookback_hours": pl.Int64},
    )

    def decide():
        return (
            window_metrics(con, points, windows),
            entity_baselines(con, points, baseline_days=baseline_days, lookback_hours=pairs),
            entity_baselines(con, points, baseline_days=baseline_days, lookback_hours=lookbacks[0]),
            daily_performance(con, as_of, curve_days).sort("adset_id", "date"),  # no order
            window_spend(con, points, windows[0]),
        )

    pieces = decide()
    with monkeypatch.context() as patched:
        _hours_only(patched)
        hourly = decide()
    for got, want in zip(pieces, hourly, strict=True):
        assert want.height > 0
        assert_frame_equal(got, want, check_exact=True)
    # the day masks and spent-hour counts, which both paths compute alike, against the hours
    windows_got, listed = pieces[0], pieces[1]
    assert_frame_equal(
        windows_got.select("adset_id", "as_of", "window_hours", "hours_with_spend").sort(
            "as_of", "window_hours", "adset_id"
        ),
        _hours_with_spend(points, windows).select(
            "adset_id", "as_of", "window_hours", "hours_with_spend"
        ),
        check_dtypes=False,
    )
    assert_frame_equal(
        listed.select("adset_id", "as_of", offsets="baseline_active_day_offsets").sort(
            "as_of", "adset_id"
        ),
        _active_days(pairs, baseline_days),
        check_dtypes=False,
    )


def test_edge_dates_are_the_cut_dates_only():
    bounds = [datetime(2024, 3, 5), datetime(2024, 3, 5, 6), datetime(2024, 3, 2, 23, 30), None]
    assert edge_dates(bounds) == [datetime(2024, 3, 2).date(), datetime(2024, 3, 5).date()]


def test_a_date_cut_only_at_noon_is_read_in_halves_and_any_other_cut_by_the_hour():
    noon, other = datetime(2024, 3, 3, 12), datetime(2024, 3, 5, 12)
    bounds = [datetime(2024, 3, 1), noon, other, datetime(2024, 3, 5, 6), None]
    assert edge_dates(bounds) == [noon.date(), other.date()]
    assert edge_dates(bounds, halves=True) == [other.date()]
    assert noon_dates(bounds) == [noon.date()]


@pytest.mark.parametrize(
    ("as_of", "windows"),
    [
        # the scores' windows at a midnight: the 72 h and 168 h middles are noons
        (START + timedelta(days=DAYS), [24, 48, 72, 96, 168]),
        # at a noon: starts and the end are noons (the range's own bounds cut a half off)
        (START + timedelta(days=DAYS - 1, hours=12), [12, 24, 36, 48, 72, 84]),
        # a noon that is also cut elsewhere (a 13-hour window's start and middle) is read by the
        # hour, the other noons in halves
        (START + timedelta(days=DAYS - 1, hours=12), [13, 24, 72]),
    ],
)
def test_noon_halves_give_the_hourly_sums_to_the_bit(con, monkeypatch, as_of, windows):
    points = [as_of, as_of - timedelta(days=3)]
    bounds = [b for p in points for w in windows for b in (p, p - timedelta(hours=w))]
    assert noon_dates(bounds + [p - timedelta(minutes=30 * w) for p in points for w in windows])
    halves = window_metrics(con, points, windows)
    with monkeypatch.context() as patched:
        _hours_only(patched)
        hourly = window_metrics(con, points, windows)
    assert hourly.height > 0
    assert_frame_equal(halves, hourly, check_exact=True)
    assert_frame_equal(
        halves.select("adset_id", "as_of", "window_hours", "hours_with_spend"),
        _hours_with_spend(points, windows).select(
            "adset_id", "as_of", "window_hours", "hours_with_spend"
        ),
        check_dtypes=False,
    )


def test_hours_written_around_the_merge_are_refused_naming_the_day(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(4, DAYS))
    as_of = START + timedelta(days=15)
    before = window_metrics(con, [as_of], [72])
    # one more hour written straight into insights (not by the merge)
    con.execute(
        "INSERT INTO insights BY NAME SELECT * FROM frame WHERE adset_id = 'a2' ORDER BY ts LIMIT 1"
    )
    con.execute(
        "UPDATE insights SET adset_id = 'late' WHERE rowid = (SELECT max(rowid) FROM insights)"
    )
    day = con.execute("SELECT date FROM insights WHERE adset_id = 'late'").fetchone()[0]
    lo, hi = datetime.combine(day, datetime.min.time()), as_of
    with pytest.raises(StaleRollupError, match=f"{day} \\(\\d+ hourly rows, \\d+ rolled up\\)"):
        insight_pieces.check_rollup(con, lo, hi + timedelta(days=1))
    with pytest.raises(StaleRollupError, match="budget-pipeline rollup"):
        daily_performance(con, as_of, 20)
    insights_rollup.refresh(con, day, day)  # rolled up: read again, with the new hour
    after = window_metrics(con, [as_of], [24 * 20])
    assert "late" in after["adset_id"].to_list()
    assert_frame_equal(
        window_metrics(con, [as_of], [72]).filter(pl.col("adset_id") != "late"),
        before.filter(pl.col("adset_id") != "late"),
        check_exact=True,
    )


def test_pieces_of_a_range_that_starts_or_ends_at_noon_stay_inside_it(con):
    day = (START + timedelta(days=5)).date()
    noon = datetime.combine(day, datetime.min.time()) + timedelta(hours=12)
    for lo, hi in [(noon, noon + timedelta(hours=36)), (noon - timedelta(hours=36), noon)]:
        params = {"lo": lo, "hi": hi, "noon": [lo.date(), hi.date()]}
        pieces = con.execute(
            "SELECT adset_id, sum(spend), sum(bit_count(spent_hours)), min(piece_start) "
            "FROM insight_pieces($lo, $hi, []::DATE[], $noon::DATE[]) GROUP BY ALL ORDER BY 1",
            params,
        ).fetchall()
        hours = con.execute(
            "SELECT adset_id, sum(CAST(spend AS DECIMAL(38, 10))), count(*) FILTER (spend > 0), "
            "min(ts) FROM insights WHERE ts >= $lo AND ts < $hi GROUP BY ALL ORDER BY 1",
            {"lo": lo, "hi": hi},
        ).fetchall()
        assert pieces and [p[:3] for p in pieces] == [h[:3] for h in hours]
        assert min(p[3] for p in pieces) >= lo
