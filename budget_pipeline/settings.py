"""Where the pipeline's files are: the three environment variables and their defaults.

``BUDGET_PIPELINE_DB`` (DuckDB file), ``BUDGET_PIPELINE_POOLS`` (pools file) and
``BUDGET_PIPELINE_SCENARIO`` (simulated-account scenario). Relative defaults resolve against
the working directory, so the CLI, ``dagster dev`` and the tests agree when started from the
project folder. Each function takes an optional ``env`` mapping (default: ``os.environ``).

:func:`check_db_path` says, before anything opens it, whether DuckDB can use the warehouse
path: an existing DuckDB file, or a new file in a folder that exists (or can be made) and is
writable. Anything else is a :class:`~budget_pipeline.config.loading.ConfigError` naming
``BUDGET_PIPELINE_DB`` and the path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH

DB_ENV = "BUDGET_PIPELINE_DB"
POOLS_ENV = "BUDGET_PIPELINE_POOLS"
SCENARIO_ENV = "BUDGET_PIPELINE_SCENARIO"
# Days the simulated account's clock may run past its history (`budget-pipeline simulate` sets
# it so the daily partitions cover the simulated days); 0 by default.
SIMULATE_DAYS_ENV = "BUDGET_PIPELINE_SIMULATE_DAYS"
DEFAULT_DB = Path("data") / "budget_pipeline.duckdb"
DEFAULT_SCENARIO_PATH = (
    Path(__file__).resolve().parent / "sources" / "simulated" / "scenarios" / "default.yaml"
)
# A DuckDB database file carries this at byte offset 8 (after an 8-byte checksum).
DUCKDB_MAGIC, DUCKDB_MAGIC_OFFSET = b"DUCK", 8


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _path(env: Mapping[str, str] | None, name: str, default: Path) -> Path:
    return Path(_env(env).get(name) or default).expanduser().absolute()


def db_path(env: Mapping[str, str] | None = None) -> Path:
    return _path(env, DB_ENV, DEFAULT_DB)


def pools_path(env: Mapping[str, str] | None = None) -> Path:
    return _path(env, POOLS_ENV, DEFAULT_POOLS_PATH)


def scenario_path(env: Mapping[str, str] | None = None) -> Path:
    return _path(env, SCENARIO_ENV, DEFAULT_SCENARIO_PATH)


def meta_token_set(env: Mapping[str, str] | None = None) -> bool:
    return bool(_env(env).get("META_ACCESS_TOKEN", "").strip())


def source_of(name: str, env: Mapping[str, str] | None = None) -> str:
    """How a message names where a path came from: the variable, or that it is unset."""
    return name if _env(env).get(name) else f"default; {name} unset"


def check_db_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The warehouse path (absolute) if DuckDB can open or create it, else :class:`ConfigError`.

    Reads at most 12 bytes and writes nothing: a path that exists must be a DuckDB database
    file DuckDB can write; a path that does not exist yet needs its nearest existing parent to
    be a writable folder.
    """
    path = db_path(env) if path is None else Path(path).expanduser().absolute()
    unset_default = not _env(env).get(DB_ENV) and path == db_path(env)
    where = f"{DB_ENV} (unset; default {path})" if unset_default else f"{DB_ENV}={path}"

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {problem}")

    if path.exists():
        if path.is_dir():
            raise fail(
                "is a directory; BUDGET_PIPELINE_DB names the DuckDB file itself, e.g. "
                f"{path / DEFAULT_DB.name}"
            )
        if not path.is_file():
            raise fail("is not a regular file")
        try:
            with path.open("rb") as handle:
                head = handle.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
        except OSError as exc:
            raise fail(f"cannot be read: {exc.strerror or exc}") from None
        if not head:
            raise fail("is an empty file, not a DuckDB database; delete it to start a new one")
        if head[DUCKDB_MAGIC_OFFSET:] != DUCKDB_MAGIC:
            raise fail(
                "exists but is not a DuckDB database file (no DuckDB header); point "
                f"{DB_ENV} at a .duckdb file, or at a path that does not exist yet"
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise fail("is a DuckDB database this user cannot write")
        return path
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise fail(f"cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"cannot be created: the folder {parent} is not writable")
    return path


def simulate_days(env: Mapping[str, str] | None = None) -> int:
    raw = (_env(env).get(SIMULATE_DAYS_ENV) or "0").strip()
    try:
        days = int(raw)
    except ValueError:
        days = -1
    if not 0 <= days <= 3650:
        raise ConfigError(
            f"{SIMULATE_DAYS_ENV}={raw!r}: expected a whole number of days from 0 to 3650"
        )
    return days
