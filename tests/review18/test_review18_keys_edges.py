"""Review 18: the integer keys at their edges, on real DuckDB files.

- ids the Graph API would never send but a fixture or a hand repair can (empty, case and
  whitespace twins, NUL and newline inside, non-ASCII, 5,000 characters, "NULL"): keyed in
  byte order, read back as the same strings;
- the curves read inside an explicit transaction that wrote (and rolled up) new hours, and
  after it rolled back; on a read-only connection, in autocommit and in a transaction;
- ``budget-pipeline rollup`` as a process after hours were edited by hand;
- ``holder_days`` on dictionary-coded ids against the strings where a row has an ad set but
  no campaign (a defect the review found, fixed).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from cli_helpers import run_cli
from hourly_insights import (
    START,
    adset_hours,
    as_insights,
    daily_from_the_hours,
    random_hours,
    warehouse,
)

from budget_pipeline import insights_rollup
from budget_pipeline.engine.holder_runs import holder_days
from budget_pipeline.engine.insight_pieces import StaleRollupError
from budget_pipeline.engine.response_curves import daily_performance

ODD = ["a1", "A1", "a1 ", " a1", "", "ünï-ß", "\U0001f642", "x" * 5000, "1", "01", "a\x00b",
       "a\nb", "NULL", "null"]  # fmt: skip
AS_OF = START + timedelta(days=4, hours=5)  # the as_of date is read from its hours


def _hours(ids: list[str], days: int, seed: int, campaigns: list[str] | None = None):
    rng = np.random.default_rng(seed)
    ts = pl.datetime_range(START, START + timedelta(days=days, hours=-1), "1h", eager=True)
    n = ts.len()
    campaigns = campaigns or [ids[(i + 3) % len(ids)] for i in range(len(ids))]
    return as_insights(
        [
            adset_hours(
                rng, ts, c, a, rng.uniform(0, 9, n), rng.uniform(0, 1, n), rng.random(n) > 0.5
            )
            for a, c in zip(ids, campaigns, strict=True)
        ]
    )


def _as_hours_say(con, as_of=AS_OF, days=3) -> pl.DataFrame:
    """daily_performance, checked equal to the bit to the hours read as strings."""
    got = daily_performance(con, as_of, days)
    assert got.schema["adset_id"] == got.schema["campaign_id"] == pl.Categorical
    plain = got.with_columns(pl.col("adset_id", "campaign_id").cast(pl.String))
    key = ["adset_id", "date"]
    assert plain.sort(key).equals(daily_from_the_hours(con, as_of, days).sort(key))
    return plain


def _keys(con) -> dict[str, int]:
    return dict(con.execute("SELECT entity_id, entity_key FROM entity_keys").fetchall())


def test_odd_ids_are_keyed_in_byte_order_and_read_back_as_they_were(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", _hours(ODD, 5, 1))
    assert _keys(con) == {i: k for k, i in enumerate(sorted(ODD, key=str.encode))}
    plain = _as_hours_say(con)
    assert set(plain["adset_id"]) == set(ODD)
    before = daily_performance(con, START, 2)  # a window before the first hour: no rows
    assert before.height == 0 and before.schema == daily_performance(con, AS_OF, 3).schema
    holders = pl.DataFrame(
        {
            "holder_id": ["", "a1 ", "A1", "01", "null"],
            "entity_type": ["adset"] * 3 + ["campaign"] * 2,
        }
    )
    coded = daily_performance(con, AS_OF, 3)
    for got, want in zip(holder_days(coded, holders), holder_days(plain, holders), strict=True):
        assert got.equals(want)


def test_the_curves_in_a_transaction_that_wrote_hours_and_after_its_rollback(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(3, 5))
    before = _keys(con)
    day = (AS_OF - timedelta(days=1)).date()
    late = _hours(["b-new"], 5, 2, ["c-new"]).filter(pl.col("date") == day)
    con.execute("BEGIN")
    con.register("late", late.to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM late")
    insights_rollup.refresh(con, day, day)
    inside = _as_hours_say(con)  # the check and the keys read on this transaction
    assert "b-new" in set(inside["adset_id"]) and "c-new" in set(inside["campaign_id"])
    con.execute("ROLLBACK")
    assert _keys(con) == before  # the keys went with the hours
    assert "b-new" not in set(_as_hours_say(con)["adset_id"])
    # and committed: kept, next in id order
    with_late = _hours(["b-new"], 5, 2, ["c-new"]).filter(pl.col("date") == day)
    con.execute("BEGIN")
    con.register("late", with_late.to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM late")
    insights_rollup.refresh(con, day, day)
    con.execute("COMMIT")
    assert _keys(con) == before | {"b-new": len(before), "c-new": len(before) + 1}
    _as_hours_say(con)


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "begin"])
def test_the_curves_on_a_read_only_connection(tmp_path, in_transaction):
    path = tmp_path / "w.duckdb"
    warehouse(path, _hours(ODD[:6], 5, 4)).close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        if in_transaction:
            con.execute("BEGIN")
        _as_hours_say(con)
    finally:
        con.close()


def test_rollup_at_the_cli_keys_hours_added_and_renamed_by_hand(tmp_path):
    path = tmp_path / "warehouse.duckdb"  # where run_cli points the CLI
    con = warehouse(path, random_hours(5, 5))
    before = _keys(con)
    # by hand: a new ad set's hours (counts change), and a0 renamed on all its hours
    con.register("added", _hours(["a9"], 5, 6, ["c0"]).to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM added")
    con.execute("UPDATE insights SET adset_id = 'a0-renamed' WHERE adset_id = 'a0'")
    with pytest.raises(StaleRollupError):
        daily_performance(con, AS_OF, 3)
    con.close()
    done = run_cli(tmp_path, "rollup")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "insights_daily rebuilt:" in done.stdout
    con = duckdb.connect(str(path))
    try:
        # the old keys stay (a0's too, though no hour names it now: never reused); the new
        # ids take the next ones, in id order
        assert _keys(con) == before | {"a0-renamed": len(before), "a9": len(before) + 1}
        plain = _as_hours_say(con)
        assert {"a0-renamed", "a9"} <= set(plain["adset_id"]) and "a0" not in set(plain["adset_id"])
    finally:
        con.close()


def test_holder_days_of_a_row_without_a_campaign_are_those_of_the_strings():
    daily = pl.DataFrame(
        {
            "adset_id": ["a1", "a1", "a2"],
            "campaign_id": [None, "c1", "c2"],
            "date": [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 1)],
            "spend": [1.0, 2.0, 3.0],
            "conversions": [0.0, 1.0, 0.0],
            "purchase_value": [0.0, 5.0, 0.0],
        }
    )
    holders = pl.DataFrame({"holder_id": ["a1", "c2"], "entity_type": ["adset", "campaign"]})
    want_days, want_ids = holder_days(daily, holders)
    for dtype in (pl.Categorical, pl.Enum(["c2", "a2", "c1", "a1", "unused"])):
        got_days, got_ids = holder_days(
            daily.with_columns(pl.col("adset_id", "campaign_id").cast(dtype)), holders
        )
        assert got_days.equals(want_days) and got_ids.equals(want_ids), dtype
