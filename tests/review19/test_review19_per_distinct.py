"""Review 19: ``entity_keys.per_distinct`` and ``holder_runs.holder_days`` on dictionary-coded
ids polars can be handed: ``pl.from_arrow`` of dictionary arrays whose dictionary repeats a
value or holds values no row uses, chunks with different dictionaries, an Enum with nulls,
a long series, slices and unrechunked concatenations. Each against the same function of the
strings (``.cast(pl.String)``), value by value."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from budget_pipeline.engine.entity_keys import per_distinct
from budget_pipeline.engine.holder_runs import holder_days

IDS = pl.Series(["a1", "a2", "c1", "c2", "zz"])


def _position(values: pl.Series) -> pl.Series:
    """holder_runs' use: each value's place among IDS, null where it is none of them."""
    return values.cast(pl.Enum(IDS), strict=False).to_physical().cast(pl.Int64)


def _length(values: pl.Series) -> pl.Series:
    return values.str.len_bytes().cast(pl.Int64)


def _same_as_strings(values: pl.Series) -> None:
    for of in (_position, _length):
        assert per_distinct(values, of).to_list() == of(values.cast(pl.String)).to_list()


def _dictionary(indices: list, dictionary: list) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary))


def _frames() -> dict[str, pl.Series]:
    return {
        "repeats and unused": pl.from_arrow(
            _dictionary([0, 1, 3, None, 1, 0, 4], ["a1", "a1", "unused", "c2", "zz", "x"])
        ),
        "chunks, different dictionaries": pl.from_arrow(
            pa.chunked_array(
                [
                    _dictionary([0, 1, None], ["a1", "c1"]),
                    _dictionary([1, 0, 2], ["c1", "nope", "a1"]),
                ]
            )
        ),
        "enum with nulls": pl.Series(
            ["c1", None, "a2", "c1", None, "q"], dtype=pl.Enum(["q", "c1", "a2", "never"])
        ),
        "all null": pl.Series([None, None, None], dtype=pl.Categorical),
        "empty": pl.Series([], dtype=pl.Categorical),
    }


@pytest.mark.parametrize("name", list(_frames()))
def test_per_distinct_is_the_strings_function(name):
    values = _frames()[name]
    _same_as_strings(values)
    _same_as_strings(values.slice(1, max(values.len() - 2, 0)))
    _same_as_strings(values.reverse())


def test_long_chunked_sliced_categoricals():
    rng = np.random.default_rng(0)
    names = np.array([f"a{i}" for i in range(20_000)] + ["a1", "c2"])
    long = pl.Series("adset_id", rng.choice(names, 2_000_000)).cast(pl.Categorical)
    long = long.scatter(rng.choice(long.len(), 5_000, replace=False), None)
    other = pl.Series(rng.choice(["zz", "brand-new", "c1"], 1_000)).cast(pl.Categorical)
    joined = pl.concat([long.slice(17, 300_000), other, long.slice(1_000_000)], rechunk=False)
    assert joined.n_chunks() == 3
    _same_as_strings(long)
    _same_as_strings(joined)
    _same_as_strings(joined.slice(299_990, 2_000))  # across the chunk joins
    _same_as_strings(joined.rechunk())


def test_holder_days_of_dictionary_coded_odd_frames_are_those_of_the_strings():
    """A week of ad-set days whose id columns come as pl.from_arrow of dictionaries with
    repeats and unused values, in two chunks, some campaigns null: holder_days equal."""
    rng = np.random.default_rng(1)
    adsets = ["a1", "a2", "a3", "a4", "b1"]
    campaign_of = {"a1": "c1", "a2": "c1", "a3": "c2", "a4": None, "b1": "c3"}
    rows = [(a, d) for a in adsets for d in range(7) if rng.random() > 0.2]
    rng.shuffle(rows)
    n = len(rows)
    adset = [a for a, _ in rows]
    campaign = [campaign_of[a] for a, _ in rows]
    plain = pl.DataFrame(
        {
            "adset_id": adset,
            "campaign_id": campaign,
            "date": [date(2026, 1, 1) + timedelta(days=d) for _, d in rows],
            "spend": rng.uniform(0, 50, n),
            "conversions": rng.uniform(0, 3, n),
            "purchase_value": rng.uniform(0, 90, n),
        }
    )
    dictionary = ["zz", "a1", "a1", "c1", "a2", "c2", "a3", "a4", "c3", "b1", "c1", "never"]
    first = {v: i for i, v in reversed(list(enumerate(dictionary)))}
    last = {v: i for i, v in enumerate(dictionary)}
    half = n // 2

    def coded(values):
        return pa.chunked_array(
            [
                _dictionary([None if v is None else first[v] for v in values[:half]], dictionary),
                _dictionary([None if v is None else last[v] for v in values[half:]], dictionary),
            ]
        )

    table = plain.to_arrow()
    table = table.set_column(0, "adset_id", coded(adset)).set_column(
        1, "campaign_id", coded(campaign)
    )
    dictionary_coded = pl.from_arrow(table)
    assert dictionary_coded.schema["adset_id"] == pl.Categorical
    holders = pl.DataFrame(
        {
            "holder_id": ["a1", "a4", "c2", "c3", "gone"],
            "entity_type": ["adset", "adset", "campaign", "campaign", "adset"],
        }
    )
    want = holder_days(plain, holders)
    for daily in (
        dictionary_coded,
        pl.concat([dictionary_coded.slice(0, 3), dictionary_coded.slice(3)], rechunk=False),
    ):
        got = holder_days(daily, holders)
        assert got[0].equals(want[0]) and got[1].equals(want[1])


def test_per_distinct_keeps_negative_results():
    values = pl.Series(["a1", "c1", "a1", None], dtype=pl.Categorical)

    def signed(v: pl.Series) -> pl.Series:
        return pl.Series([-1 if x == "a1" else 2 for x in v.to_list()], dtype=pl.Int64)

    assert per_distinct(values.drop_nulls(), signed).to_list() == [-1, 2, -1]
