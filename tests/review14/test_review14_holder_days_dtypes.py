"""Review 14: holder_days (the grouping that replaced the sorted daily_performance query) must
take the ad-set days it is documented to take, whatever numeric dtype the sums come in. The
old holder_daily cast every sum to Float64 after the concat; the new one concatenated an ad
set's own rows (their dtype as given) with the CBO campaigns' compensated sums (always
Float64), so integer spend or counts failed with a SchemaError."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
import response_curves_oracle as oracle

from budget_pipeline.engine.response_curves import DAILY, holder_daily

DAILY_ROWS = pl.DataFrame(
    {
        "adset_id": ["a", "a", "s1", "s2", "s1"],
        "campaign_id": ["c", "c", "k", "k", "k"],
        "date": [date(2026, 10, 2), date(2026, 10, 1), date(2026, 10, 1), date(2026, 10, 1),
                 date(2026, 10, 2)],
        "spend": [3, 2, 5, 7, 11],
        "conversions": [1, 0, 2, 1, 3],
        "purchase_value": [10, 0, 20, 9, 33],
    }
)  # fmt: skip
HOLDERS = pl.DataFrame({"holder_id": ["a", "k"], "entity_type": ["adset", "campaign"]})


@pytest.mark.parametrize("dtype", [pl.Int64, pl.Int32, pl.Float32])
@pytest.mark.parametrize("rows", ["both", "own only", "cbo only"])
def test_holder_days_take_any_numeric_sums_as_the_old_grouping_did(dtype, rows):
    daily = DAILY_ROWS.with_columns(pl.col("spend", "conversions", "purchase_value").cast(dtype))
    if rows == "own only":
        daily = daily.filter(pl.col("campaign_id") != "k")
    elif rows == "cbo only":
        daily = daily.filter(pl.col("campaign_id") == "k")
    got = holder_daily(daily, HOLDERS)
    want = oracle.holder_daily(daily, HOLDERS)
    assert got.schema == pl.Schema(DAILY)
    assert got.sort(list(DAILY)).equals(want.sort(list(DAILY)))
    assert got.height == (2 if rows != "both" else 4)
