"""Review 15: entity_baselines with a staged lookbacks frame that lists one (ad set, point,
length) twice.

Before the baseline query grouped by an integer ``cell`` per staged row, the two grid rows of
such a pair joined every Insights piece twice and were grouped back into one row with every
baseline sum doubled (a doubled baseline spend passes ``min_baseline_spend`` and halves every
relative signal). Grouped by cell, the pair came back as two identical rows instead: one
entity scored twice. A pair listed twice is the same pair: it must come back once, with the
sums a single listing gives."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from hourly_insights import START, random_hours, warehouse
from polars.testing import assert_frame_equal

from budget_pipeline.engine.baselines import entity_baselines


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = warehouse(tmp_path_factory.mktemp("r15") / "w.duckdb", random_hours(7, 40, 6))
    yield con
    con.close()


def test_a_pair_listed_twice_gives_one_row_with_single_sums(con):
    p1, p2 = START + timedelta(days=30), START + timedelta(days=33, hours=5)
    once = pl.DataFrame(
        {
            "adset_id": ["a0", "a1", "a0", "a2"],
            "as_of": [p1, p1, p2, p2],
            "lookback_hours": [72, 48, 96, 72],
        }
    )
    twice = pl.concat([once, once.head(2)])  # a0 and a1 at p1 listed again
    want = entity_baselines(con, [p1, p2], baseline_days=30, lookback_hours=once)
    got = entity_baselines(con, [p1, p2], baseline_days=30, lookback_hours=twice)
    assert want.height == 4 and want["baseline_spend"].min() > 0  # real sums, not zeros
    assert_frame_equal(got, want, check_exact=True)
