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

import uuid
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
    lowest = min((int(c.min()) for c in codes.values() if c.size), default=0)
    if lowest < 0:
        raise StaleRollupError(
            f"insights_daily names a negative key ({lowest}); keys run 0, 1, ...: rebuild "
            "the rollup with `budget-pipeline rollup`"
        )
    top = max((int(c.max(initial=-1)) for c in codes.values()), default=-1) + 1
    # the keys used: marked in an array up to the largest (keys are issued one after another,
    # so it is about the ids ever seen), or sorted where a stray large key would make it huge
    small = top <= _SPARSE_CODES * sum(c.size for c in codes.values()) + 65536
    if small:
        used = np.zeros(top, dtype=bool)
        for code in codes.values():
            used[code] = True
        wanted = np.flatnonzero(used).astype(np.int32)
    else:
        wanted = np.unique(np.concatenate(list(codes.values())))
    if 2 * wanted.size >= top:  # dense: every key below the largest, in one range
        ids = con.sql(load_sql("select_entity_keys"), params={"top": top}).to_arrow_table()
    else:
        ids = _staged_keys(con, wanted)
    found = ids["entity_key"].to_numpy()
    dictionary = ids["entity_id"].combine_chunks()
    if found.size == top and np.array_equal(found, np.arange(top)):
        index_of = dict(codes)  # the ids read run 0, 1, ...: a key is its own place
    else:  # a key's place among the ids read (ascending, distinct)
        place = np.searchsorted(found, wanted)
        hit = found[np.minimum(place, found.size - 1)] == wanted if found.size else place < 0
        lost = wanted[~hit]
        if lost.size:
            raise StaleRollupError(
                f"insights_daily names {lost.size} key(s) entity_keys has no id for (e.g. "
                f"{lost[:3].tolist()}); rebuild the rollup with `budget-pipeline rollup`"
            )
        if small:
            position = np.zeros(top, dtype=np.int32)
            position[wanted] = place
            index_of = {name: position[code] for name, code in codes.items()}
        else:
            index_of = {
                name: np.searchsorted(found, code).astype(np.int32) for name, code in codes.items()
            }
    for key_column, id_column in columns.items():
        at = keyed.schema.get_field_index(key_column)
        keyed = keyed.set_column(
            at,
            id_column,
            pa.DictionaryArray.from_arrays(pa.array(index_of[key_column]), dictionary),
        )
    return pl.from_arrow(keyed)  # type: ignore[return-value]


def _staged_keys(con: duckdb.DuckDBPyConnection, wanted: np.ndarray) -> pa.Table:
    """entity_key, entity_id of the keys ``wanted``, in key order, joined on them staged under
    a name of this call's own (a caller's view or temp table of any name is left alone)."""
    name = f"wanted_keys_{uuid.uuid4().hex}"
    statement = load_sql("select_entity_keys_staged").replace("wanted_keys", name)
    with db.staged(con, name, pl.DataFrame({"entity_key": wanted.astype(np.int32)})):
        return con.sql(statement).to_arrow_table()


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
    first[code[::-1]] = (np.arange(code.size) if rows is None else rows)[::-1]  # a row of each
    distinct = np.flatnonzero(first >= 0)
    number = of(values.gather(first[distinct]).cast(pl.String))
    table = np.zeros(top, dtype=np.int64)
    table[distinct] = number.fill_null(0).to_numpy()
    if rows is None and not number.null_count():  # every row has a number
        return pl.Series(values.name, table[code])
    known = np.zeros(top, dtype=bool)  # a value whose number is not null
    known[distinct] = number.is_not_null().to_numpy()
    spread, given = table[code], known[code]
    if rows is not None:
        spread, given = np.zeros(codes.len(), dtype=np.int64), np.zeros(codes.len(), dtype=bool)
        spread[rows], given[rows] = table[code], known[code]
    result = pl.Series(values.name, spread)
    return result if given.all() else result.set(pl.Series(~given), None)  # type: ignore[arg-type]
