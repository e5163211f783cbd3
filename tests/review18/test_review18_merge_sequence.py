"""Review 18: the integer keys through a sequence of real ``insights`` merges (Dagster).

Day after day the pull (``raw_insights``, written here as the extraction would leave it)
brings new ad sets, restates the re-pulled days, moves an ad set to another campaign, names
an ad set by an id that is also a campaign's, and an older partition is back-filled with an
ad set that only ever spent then. After each merge: every id's key is the one it was first
given, the keys run 0, 1, ... without a gap, every ``insights_daily`` row carries its ids'
keys, and ``daily_performance`` is, to the bit, what the hours themselves say (the ids read
as strings straight from ``insights``); the holder days from its dictionary-coded ids are
those from the same ids as strings.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from dagster_helpers import ALL_KEYS, resources
from hourly_insights import daily_from_the_hours, rollup_keys_disagreeing

from budget_pipeline.definitions import defs
from budget_pipeline.engine.holder_runs import holder_days
from budget_pipeline.engine.response_curves import daily_performance

# ids as the Graph API gives them (digits): numeric order differs from text order ("9" <
# "10" as numbers only), leading zeros make distinct ids of one number, the widest the schema
# allows, and "7" is both an ad set's and a campaign's id
WIDE = "9" * 32
CAMPAIGNS = ("7", "10", "010")

# the partitions merged, oldest key first: (partition index from the newest, ad sets that
# deliver on the window's days as (adset_id, campaign_id))
STEPS: list[tuple[int, list[tuple[str, str]]]] = [
    (-5, [("9", "10"), ("10", "10"), ("0010", "010")]),
    (-4, [("9", "10"), ("10", "10"), ("0010", "010"), ("7", "7"), ("1", "7")]),  # "7" twice
    (-3, [("9", "7"), ("10", "10"), ("0010", "010"), ("7", "7"), (WIDE, "10")]),  # 9 moves
    (-8, [("9", "10"), ("00", "010")]),  # a back-fill of older days: "00" spent only then
    (-3, [("9", "7"), ("10", "10"), ("0010", "010"), ("7", "7"), (WIDE, "10")]),  # again
    (-2, [("9", "7"), ("10", "10"), ("7", "7"), (WIDE, "10"), ("08", "7")]),
]


def _pull(day: date, adsets: list[tuple[str, str]], version: int) -> pl.DataFrame:
    """24 hours of each ad set on ``day``; ``version`` restates the values (a re-pull)."""
    rng = np.random.default_rng([day.toordinal(), version])
    frames = []
    for adset, campaign in adsets:
        hours = np.flatnonzero(rng.random(24) > 0.3).astype(np.int8)
        n = hours.size
        frames.append(
            pl.DataFrame(
                {
                    "date": [day] * n,
                    "hour": hours,
                    "campaign_id": campaign,
                    "adset_id": adset,
                    "spend": rng.uniform(0, 40, n).round(2) * (rng.random(n) > 0.2),
                    "impressions": rng.integers(0, 900, n),
                    "reach": rng.integers(0, 500, n),
                    "clicks": rng.integers(0, 30, n),
                    "conversions": rng.integers(0, 3, n).astype(float),
                    "purchase_value": rng.uniform(0, 90, n).round(2),
                    "source": "review18",
                },
                schema_overrides={"hour": pl.Int8},
            )
        )
    at = datetime.combine(day, datetime.min.time()) + timedelta(days=1, hours=version)
    return pl.concat(frames).with_columns(
        pulled_at=pl.lit(at), reported_at=pl.lit(at - timedelta(hours=1))
    )


def _merge(db_path, instance, key: str, adsets, version: int) -> None:
    """The pull of partition ``key``'s window (its day and the two re-pulled before it) in
    ``raw_insights``, then the real ``insights`` asset."""
    end = date.fromisoformat(key)
    con = duckdb.connect(str(db_path))
    try:
        from budget_pipeline.warehouse_schema import ensure_schema

        ensure_schema(con)
        pulled = pl.concat([_pull(end - timedelta(days=d), adsets, version) for d in range(3)])
        con.register("pulled", pulled.to_arrow())
        con.execute(
            "DELETE FROM raw_insights WHERE date BETWEEN $lo AND $hi",
            {"lo": end - timedelta(days=2), "hi": end},
        )
        con.execute("INSERT INTO raw_insights BY NAME SELECT * FROM pulled")
    finally:
        con.close()
    result = dg.materialize(
        [*defs.assets],
        selection=["insights"],
        partition_key=key,
        resources=resources(db_path),
        instance=instance,
    )
    assert result.success


@pytest.mark.slow
def test_keys_and_curves_days_through_a_sequence_of_real_merges(tmp_path):
    db_path, instance = tmp_path / "w.duckdb", dg.DagsterInstance.ephemeral()
    given: dict[str, int] = {}
    for version, (back, adsets) in enumerate(STEPS):
        key = ALL_KEYS[back - 1]
        _merge(db_path, instance, key, adsets, version)
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            keys = dict(con.execute("SELECT entity_id, entity_key FROM entity_keys").fetchall())
            # an id keeps its first key; new ones take the next integers, in id order
            assert {i: keys[i] for i in given} == given
            new = sorted(set(keys) - set(given))
            assert [keys[i] for i in new] == list(range(len(given), len(keys)))
            named = con.execute(
                "SELECT adset_id FROM insights UNION SELECT campaign_id FROM insights"
            ).fetchall()
            assert {i for (i,) in named} <= set(keys)
            given = keys
            assert rollup_keys_disagreeing(con) == 0, version
            newest = date.fromisoformat(max(ALL_KEYS[b - 1] for b, _ in STEPS[: version + 1]))
            for as_of, days in (
                (datetime.combine(newest, datetime.min.time()) + timedelta(days=1), 9),
                (datetime.combine(newest, datetime.min.time()) + timedelta(hours=13), 4),
            ):
                got = daily_performance(con, as_of, days)
                assert got.schema["adset_id"] == pl.Categorical and got.height > 0
                plain = got.with_columns(pl.col("adset_id", "campaign_id").cast(pl.String))
                want = daily_from_the_hours(con, as_of, days)
                order = ["adset_id", "date"]
                assert plain.sort(order).equals(want.sort(order)), (version, as_of)
                holders = pl.DataFrame(
                    {
                        "holder_id": ["9", "10", WIDE, "010", "7", "08"],
                        "entity_type": ["adset", "adset", "adset", "campaign", "campaign", "adset"],
                    }
                )
                coded, ids = holder_days(got, holders)
                strings, string_ids = holder_days(plain, holders)
                assert coded.equals(strings) and ids.equals(string_ids), (version, as_of)
        finally:
            con.close()
    assert {"00", "08", WIDE, "7", "1"} <= set(given) and len(given) == len(set(given.values()))
