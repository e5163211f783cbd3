"""Two reads at once on one DuckDB file: one on a second cursor, in a thread, beside the other.

DuckDB releases the GIL while it executes, so two queries' serial parts (binding, planning,
the Arrow and polars conversions) overlap on a second core: the scores read their window
metrics beside the baselines, the curves check the rollup beside their query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

import duckdb


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` is inside an explicit transaction (``BEGIN``): there one transaction
    id serves every statement, in autocommit each gets its own. (Probing with a ``BEGIN``
    would abort the caller's transaction.)"""
    first, second = (con.execute("SELECT txid_current()").fetchall() for _ in range(2))
    return first == second


class Side:
    """:func:`beside`'s reader: ``submit(read, *args)`` calls ``read(connection, *args)``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, pool: ThreadPoolExecutor | None):
        self._con = con
        self._pool = pool
        self.submitted: list[Future] = []

    def submit(self, read: Callable[..., Any], *args, **kwargs) -> Future:
        if self._pool is not None:
            done = self._pool.submit(read, self._con, *args, **kwargs)
        else:
            done = Future()
            done.set_result(read(self._con, *args, **kwargs))
        self.submitted.append(done)
        return done


@contextmanager
def beside(con: duckdb.DuckDBPyConnection, wanted: bool = True) -> Iterator[Side]:
    """Run a read on a second cursor of ``con`` in a thread while ``con`` reads on.

    A cursor is a second connection to the same database: it sees what is committed, not a
    caller's open transaction, so inside one (or when not ``wanted``) the read runs here, on
    ``con``, at once. DuckDB releases the GIL while it executes, so the two queries' serial
    parts (binding, planning, the Arrow and polars conversions) overlap. When the reads here
    fail, the side's reads are waited for first: their error (a stale rollup, say) is the one
    raised, with this one as its context."""
    cursor = None if not wanted or in_transaction(con) else con.cursor()
    try:
        with ThreadPoolExecutor(max_workers=1) if cursor else nullcontext() as pool:
            side = Side(cursor or con, pool)
            try:
                yield side
            except Exception:
                for done in side.submitted:
                    done.result()
                raise
    finally:
        if cursor is not None:
            cursor.close()
