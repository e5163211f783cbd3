"""DuckDB helpers: one transaction per write, polars frames staged under a known name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

from budget_pipeline.sql import load_sql


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit on success, roll back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """Expose ``frame`` to SQL as ``name`` for the duration of the block."""
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def run(con: duckdb.DuckDBPyConnection, statement: str, params: dict | None = None):
    """Execute ``sql/<statement>.sql`` with named parameters."""
    return con.execute(load_sql(statement), params or {})


def one(con: duckdb.DuckDBPyConnection, statement: str, params: dict | None = None) -> tuple | None:
    """The first row of ``sql/<statement>.sql`` (the result is drained: duckdb 2.0 blocks the
    connection while a result is unfinished)."""
    rows = run(con, statement, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, statement: str, params: dict | None = None):
    """The single value of a one-row, one-column statement (None when it returns no row)."""
    row = one(con, statement, params)
    return row[0] if row else None


def read(
    con: duckdb.DuckDBPyConnection, statement: str, params: dict | None = None
) -> pl.DataFrame:
    """Run ``sql/<statement>.sql`` and return the result as a polars frame (via Arrow)."""
    return con.sql(load_sql(statement), params=params or None).pl()


def replace(
    con: duckdb.DuckDBPyConnection,
    frame: pl.DataFrame,
    *,
    delete: str,
    insert: str,
    staged_as: str,
    params: dict | None = None,
) -> None:
    """Delete (``sql/<delete>.sql`` with ``params``) then insert ``frame``, in one transaction."""
    with transaction(con), staged(con, staged_as, frame):
        run(con, delete, params)
        run(con, insert)
