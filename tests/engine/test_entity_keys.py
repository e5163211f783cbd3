"""Issue 11: the curves query reads ad-set and campaign ids as integer keys (``entity_keys``,
carried in ``insights_daily``) and ``daily_performance`` hands them on dictionary-encoded, so
half a million ad-set days never become strings. A key is given once, in id order, and never
changes; an id the rollup has not keyed is refused, not read as missing; and whatever works on
the ids works the same on their codes (entity_keys.per_distinct, holder_runs.holder_days)."""

from __future__ import annotations

import string
from datetime import timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from hourly_insights import (
    START,
    adset_hours,
    as_insights,
    random_hours,
    rollup_keys_disagreeing,
    warehouse,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_pipeline import insights_rollup, warehouse_schema
from budget_pipeline.engine.entity_keys import per_distinct
from budget_pipeline.engine.holder_runs import _numbers
from budget_pipeline.engine.insight_pieces import StaleRollupError
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.warehouse_schema import ensure_schema

DAYS = 12


def _keys(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT entity_id, entity_key FROM entity_keys").fetchall())


def _new_adset(day: int, campaign: str, adset: str) -> pl.DataFrame:
    rng = np.random.default_rng(day)
    ts = pl.datetime_range(
        START + timedelta(days=day), START + timedelta(days=day, hours=23), "1h", eager=True
    )
    n = ts.len()
    return as_insights(
        [adset_hours(rng, ts, campaign, adset, rng.uniform(1, 9, n), rng.uniform(0, 1, n),
                     rng.random(n) > 0.5)]
    )  # fmt: skip


def test_keys_are_given_once_in_id_order_and_never_change(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(3, DAYS))
    first = _keys(con)
    ids = sorted({*[f"a{i}" for i in range(5)], "c0", "c1"})
    assert first == {entity_id: key for key, entity_id in enumerate(ids)}
    assert rollup_keys_disagreeing(con) == 0
    # a later day brings a new ad set in a new campaign: the next keys, in id order; the old
    # ids keep theirs (the merge rolls up only the dates it wrote, as here)
    con.register("later", _new_adset(DAYS, "b-campaign", "a-new").to_arrow())
    con.execute("INSERT INTO insights BY NAME SELECT * FROM later").fetchall()
    day = (START + timedelta(days=DAYS)).date()
    insights_rollup.refresh(con, day, day)
    assert _keys(con) == first | {"a-new": len(ids), "b-campaign": len(ids) + 1}
    assert rollup_keys_disagreeing(con) == 0
    # rolled up whole again, and rebuilt by a new schema version: the same keys
    insights_rollup.refresh(con)
    con.execute(
        "UPDATE warehouse_info SET value = 'an-earlier-version' WHERE key = 'schema_version'"
    ).fetchall()
    assert ensure_schema(con)
    assert _keys(con) == first | {"a-new": len(ids), "b-campaign": len(ids) + 1}
    assert rollup_keys_disagreeing(con) == 0


def test_daily_performance_gives_the_ids_dictionary_coded(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(5, DAYS))
    as_of = START + timedelta(days=DAYS - 1, hours=7)  # the as_of date is read from its hours
    daily = daily_performance(con, as_of, 9)
    assert (
        daily.schema["adset_id"] == pl.Categorical and daily.schema["campaign_id"] == pl.Categorical
    )
    got = daily.with_columns(pl.col("adset_id", "campaign_id").cast(pl.String))
    want = con.sql(
        "SELECT adset_id, max(campaign_id) AS campaign_id, date, sum(spend) AS spend "
        "FROM insights WHERE ts >= $lo AND ts < $hi GROUP BY adset_id, date",
        params={"lo": as_of - timedelta(days=9), "hi": as_of},
    ).pl()
    key = ["adset_id", "date"]
    joined = got.join(want, on=key, how="full", coalesce=True, validate="1:1")
    assert joined.height == want.height == got.height
    assert (joined["campaign_id"] == joined["campaign_id_right"]).all()
    assert np.allclose(joined["spend"].to_numpy(), joined["spend_right"].to_numpy())


def test_an_id_edited_into_the_hours_by_hand_is_refused_until_the_rollup_is_rebuilt(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(6, DAYS))
    as_of = START + timedelta(days=DAYS - 1, hours=7)
    # same row counts (the count check passes), but an id no key was ever given
    con.execute(
        "UPDATE insights SET adset_id = 'renamed' WHERE adset_id = 'a1' AND date = $d",
        {"d": as_of.date()},
    ).fetchall()
    before = con.execute("SELECT count(*) FROM entity_keys").fetchall()
    with pytest.raises(StaleRollupError, match=r"adset_key: .* `budget-pipeline rollup`"):
        daily_performance(con, as_of, 9)
    assert con.execute("SELECT count(*) FROM entity_keys").fetchall() == before  # nothing written
    insights_rollup.refresh(con)
    daily = daily_performance(con, as_of, 9)
    assert "renamed" in daily["adset_id"].cast(pl.String).to_list()


def test_a_key_entity_keys_lost_is_refused(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(7, 4))
    # c1's key moved: the rollup's rows name the old one, which now has no id
    con.execute(
        "UPDATE entity_keys SET entity_key = entity_key + 100 WHERE entity_id = 'c1'"
    ).fetchall()
    lost = r"names 1 key\(s\) entity_keys has no id for .* `budget-pipeline rollup`"
    with pytest.raises(StaleRollupError, match=lost):
        daily_performance(con, START + timedelta(days=3), 2)


ID = st.text(alphabet=string.ascii_lowercase[:4], min_size=0, max_size=2)


def _coded(values: list[str | None], order: list[str], as_enum: bool) -> pl.Series:
    if as_enum:  # categories in their own order, some never used
        return pl.Series("v", values, dtype=pl.Enum(order))
    return pl.Series("v", values, dtype=pl.Categorical)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), ID), max_size=40),
    ids=st.lists(ID, unique=True, max_size=6),
    extra=st.lists(ID, max_size=4),
    seed=st.integers(0, 2**16),
    as_enum=st.booleans(),
)
def test_per_distinct_on_codes_equals_the_function_on_the_strings(
    values, ids, extra, seed, as_enum
):
    order = list(dict.fromkeys([*(v for v in values if v is not None), *extra]))
    np.random.default_rng(seed).shuffle(order)
    plain = pl.Series("v", values, dtype=pl.String)
    wanted = pl.Series(sorted(ids), dtype=pl.String)
    want = _numbers(plain, wanted)
    got = _numbers(_coded(values, order, as_enum), wanted)
    assert got.dtype == want.dtype == pl.Int64 and got.to_list() == want.to_list()


def test_per_distinct_with_codes_far_past_the_rows_matches_on_strings():
    # an enum of many categories of which a few rows use the last: codes far past their count
    many = pl.Enum([f"filler-{i}" for i in range(80_000)] + ["late-a", "late-b"])
    values = pl.Series("v", ["late-b", None, "late-a", "late-b"], dtype=many)
    assert int(values.to_physical().drop_nulls().min()) >= 80_000
    calls = []

    def position(v: pl.Series) -> pl.Series:
        calls.append(v.len())
        return _numbers(v, pl.Series(["late-a", "late-b"]))

    assert per_distinct(values, position).to_list() == [1, None, 0, 1]
    assert calls == [4]  # the rows' strings, not a lookup table of 80,000 codes


def test_schema_version_covers_the_key_assignment():
    # a new way of keying ids rebuilds every warehouse's rollup, as a new rollup does
    assert "insert_entity_keys_window" in warehouse_schema._ROLLUP


@pytest.mark.parametrize("in_transaction", [False, True], ids=["beside", "in-transaction"])
def test_a_stale_rollup_is_the_error_whichever_cursor_checks_it(tmp_path, in_transaction):
    # the curves check the rollup on a second cursor beside their query, or first, on the
    # caller's connection, inside its transaction (a cursor would not see its writes)
    con = warehouse(tmp_path / "w.duckdb", random_hours(8, DAYS))
    as_of = START + timedelta(days=DAYS - 1, hours=7)
    con.execute(
        "INSERT INTO insights BY NAME SELECT * FROM frame WHERE date = $d AND adset_id = 'a0' "
        "ORDER BY ts LIMIT 1",
        {"d": (START + timedelta(days=3)).date()},
    ).fetchall()  # one hour twice, around the merge
    if in_transaction:
        con.execute("BEGIN").fetchall()
    with pytest.raises(StaleRollupError, match="out of step with insights on"):
        daily_performance(con, as_of, 9)
    if in_transaction:
        con.execute("ROLLBACK").fetchall()
    assert daily_performance(con, as_of, 5).height > 0  # days after the extra hour: read
