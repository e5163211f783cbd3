"""Ad-set and campaign ids read as integer keys, turned back into ids once per distinct id.

The curves query returns half a million ad-set days at 10k ad sets. Read as strings, the two
id columns cost more than the rest of the query (15 of 27 ms), and matching them to budget
holders cost 15 ms more. ``insights_daily`` therefore keeps each id's integer key
(``sql/create_entity_keys.sql``: assigned once when the id first arrives, never changed); the
query returns the keys, and :func:`with_entity_ids` puts the ids back as a dictionary-encoded
column (a polars ``Categorical``: the keys as codes, each distinct id stored once).
:func:`per_distinct` is the other half: a function of the ids worked out once per distinct id
and spread to the rows by code, so the rows' strings are never made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from budget_pipeline import db
from budget_pipeline.engine.insight_pieces import StaleRollupError
from budget_pipeline.sql import load_sql

# codes past this many per row (a process that made very many categoricals) are matched as
# strings instead: the lookup table would outgrow the rows
_SPARSE_CODES = 4


def with_entity_ids(
    con: duckdb.DuckDBPyConnection, keyed: pa.Table, columns: Mapping[str, str]
) -> pl.DataFrame:
    """``keyed`` as a polars frame with each key column (``columns``: key column -> id column)
    replaced, in place, by its ids as a ``Categorical``. Only the ids of the keys the rows use
    are read (an account's past ad sets keep their keys: reading them all would cost more as
    the history grows). A key with no id (null: an id the rollup has not keyed; or a key
    ``entity_keys`` has lost) is a stale rollup, raised as :class:`StaleRollupError`."""
    codes = {}
    for key_column in columns:
        key = keyed[key_column].combine_chunks()
        if key.null_count:
            raise StaleRollupError(
                f"{key_column}: {key.null_count} row(s) of insights name an id entity_keys has "
                "no key for: hours were written to insights without the insights merge; "
                "rebuild the rollup with `budget-pipeline rollup`"
            )
        codes[key_column] = key.cast(pa.int32()).to_numpy()
    top = max((int(c.max(initial=-1)) for c in codes.values()), default=-1) + 1
    used = np.zeros(top, dtype=bool)
    for code in codes.values():
        used[code] = True
    wanted = np.flatnonzero(used)
    if 2 * wanted.size >= top:  # dense: every key below the largest, in one range
        ids = con.sql(load_sql("select_entity_keys"), params={"top": top}).to_arrow_table()
    else:
        with db.staged(con, "wanted_keys", pl.DataFrame({"entity_key": wanted.astype(np.int32)})):
            ids = con.sql(load_sql("select_entity_keys_staged")).to_arrow_table()
    found = ids["entity_key"].to_numpy()
    position = None  # a key's place among the ids read: the key itself when they run 0, 1, ...
    if found.size != top or not np.array_equal(found, np.arange(top)):
        position = np.full(top, -1, dtype=np.int32)
        position[found] = np.arange(found.size, dtype=np.int32)
        lost = wanted[position[wanted] < 0]
        if lost.size:
            raise StaleRollupError(
                f"insights_daily names {lost.size} key(s) entity_keys has no id for (e.g. "
                f"{lost[:3].tolist()}); rebuild the rollup with `budget-pipeline rollup`"
            )
    dictionary = ids["entity_id"].combine_chunks()
    for key_column, id_column in columns.items():
        index = codes[key_column] if position is None else position[codes[key_column]]
        at = keyed.schema.get_field_index(key_column)
        keyed = keyed.set_column(
            at, id_column, pa.DictionaryArray.from_arrays(pa.array(index), dictionary)
        )
    return pl.from_arrow(keyed)  # type: ignore[return-value]


def per_distinct(values: pl.Series, of: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``of(values)`` (a Series of the same length, one integer per value, null allowed),
    worked out on each distinct value once where ``values`` are dictionary-encoded
    (``Categorical``/``Enum``) and spread to the rows by code; on the strings otherwise. A
    missing value gives null."""
    if not isinstance(values.dtype, (pl.Categorical, pl.Enum)):
        return of(values)
    codes = values.to_physical()
    rows = codes.is_not_null().arg_true().to_numpy() if codes.null_count() else None
    code = codes.drop_nulls().to_numpy().astype(np.int64, copy=False)
    top = int(code.max(initial=-1)) + 1
    if top > _SPARSE_CODES * code.size + 65536:
        return of(values.cast(pl.String))
    first = np.full(top, -1, dtype=np.int64)
    first[code[::-1]] = (np.arange(code.size) if rows is None else rows)[::-1]  # first row
    distinct = np.flatnonzero(first >= 0)
    table = np.full(top, -1, dtype=np.int64)
    table[distinct] = of(values.gather(first[distinct]).cast(pl.String)).fill_null(-1).to_numpy()
    if rows is None:
        spread = table[code]
    else:
        spread = np.full(codes.len(), -1, dtype=np.int64)
        spread[rows] = table[code]
    number = pl.Series(values.name, spread)
    return number.set(number < 0, None) if (spread < 0).any() else number
