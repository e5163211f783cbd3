"""Load the SQL statements kept one per file in the top-level ``sql/`` folder.

Files are named ``<verb>_<table>.sql`` and take DuckDB ``?``/``$name`` parameters; values are
never formatted into the text. The folder is found next to the package in a checkout or an
editable install, and as package data (``budget_pipeline/_sql``) in a wheel.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parent.parent / "sql",
    Path(__file__).resolve().parent / "_sql",
)


def sql_dir() -> Path:
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"sql/ folder not found; looked in {[str(c) for c in _CANDIDATES]}")


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL statement {name!r} at {path}")
    return path.read_text(encoding="utf-8")
