"""Bring a warehouse's tables up to date once, not on every connection.

Every asset opens its own connection (DuckDB has one writer; a step holds the file only while
it runs), and each used to re-run every ``CREATE TABLE IF NOT EXISTS`` and migration: 17
statements per connection, 8 connections per run. Now a connection reads one row — the
version of the table definitions the file was last brought up to (a hash of the ``sql/``
DDL files, kept in ``warehouse_info``) — and runs the DDL only when that differs: a new file,
a warehouse made by an earlier version, or new DDL in this one.

Migrations that SQL alone cannot express run here too: warehouses made before issue 11 had a
primary key on ``insights`` (DuckDB cannot drop one), so the table is rebuilt without it once;
and the per-day rollup ``insights_daily`` is rebuilt from the hours whenever the version
changes (an earlier build may have rewritten hours without it, or rolled them up another way).
"""

from __future__ import annotations

import hashlib
from functools import cache

import duckdb

from budget_pipeline import db, insights_rollup
from budget_pipeline.sql import load_sql, sql_dir

_DDL_PATTERNS = ("create_*.sql", "alter_*.sql")
# Bump when a Python migration below changes (the DDL files are hashed by their text).
MIGRATIONS = 2


@cache
def _ddl() -> tuple[str, ...]:
    return tuple(ddl.stem for pattern in _DDL_PATTERNS for ddl in sorted(sql_dir().glob(pattern)))


# How the rollup is computed: a new way rebuilds every warehouse's rollup once.
_ROLLUP = ("insert_entity_keys_window", "insert_insights_daily_window")
_ROLLUP_TABLE = "create_insights_daily"


@cache
def schema_version() -> str:
    digest = hashlib.sha256(f"migrations {MIGRATIONS}".encode())
    for name in (*_ddl(), *_ROLLUP):
        digest.update(f"\n-- {name}\n{load_sql(name)}".encode())
    return digest.hexdigest()[:16]


def _current(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        return db.scalar(con, "select_schema_version")
    except duckdb.CatalogException:  # a new file: no warehouse_info yet
        return None


def _drop_insights_primary_key(con: duckdb.DuckDBPyConnection) -> None:
    if not db.one(con, "select_insights_primary_key"):
        return
    with db.transaction(con):
        con.execute("ALTER TABLE insights RENAME TO insights_with_primary_key")
        con.execute(load_sql("create_insights"))
        con.execute("INSERT INTO insights BY NAME SELECT * FROM insights_with_primary_key")
        con.execute("DROP TABLE insights_with_primary_key")


def _build_insights_daily(con: duckdb.DuckDBPyConnection) -> None:
    # Rebuilt whole whenever the version changes (0.7 s at 10k ad sets and 60 days, once):
    # another build may have rewritten hours without rolling them up, or rolled them up
    # another way; equal row counts would not show restated values.
    with db.transaction(con):
        insights_rollup.refresh(con)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the tables and run the migrations unless this file is already up to date;
    True if it had to."""
    version = schema_version()
    if _current(con) == version:
        return False
    for name in _ddl():  # tables first, then the migrations of earlier warehouses
        if name == _ROLLUP_TABLE:  # derived, rebuilt below: made afresh in this version's columns
            con.execute("DROP TABLE IF EXISTS insights_daily")
        con.execute(load_sql(name))
    _drop_insights_primary_key(con)
    _build_insights_daily(con)
    db.run(con, "upsert_schema_version", {"version": version})
    return True
