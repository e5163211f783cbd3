"""Where the pipeline's files are: the three environment variables and their defaults.

``BUDGET_PIPELINE_DB`` (DuckDB file), ``BUDGET_PIPELINE_POOLS`` (pools file) and
``BUDGET_PIPELINE_SCENARIO`` (simulated-account scenario). Relative defaults resolve against
the working directory, so the CLI, ``dagster dev`` and the tests agree when started from the
project folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH

DB_ENV = "BUDGET_PIPELINE_DB"
POOLS_ENV = "BUDGET_PIPELINE_POOLS"
SCENARIO_ENV = "BUDGET_PIPELINE_SCENARIO"
DEFAULT_DB = Path("data") / "budget_pipeline.duckdb"
DEFAULT_SCENARIO_PATH = (
    Path(__file__).resolve().parent / "sources" / "simulated" / "scenarios" / "default.yaml"
)


def db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB).expanduser().absolute()


def pools_path() -> Path:
    return Path(os.environ.get(POOLS_ENV) or DEFAULT_POOLS_PATH).expanduser().absolute()


def scenario_path() -> Path:
    return Path(os.environ.get(SCENARIO_ENV) or DEFAULT_SCENARIO_PATH).expanduser().absolute()


def meta_token_set() -> bool:
    return bool(os.environ.get("META_ACCESS_TOKEN"))
