"""Shared set-up of the counterfactual tests: the default account's 60-day history in a DuckDB
file (one real cycle run, made once), and the counterfactual group launched as a range."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_helpers import ALL_KEYS, definitions, run_cycle

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> Path:
    """A warehouse holding the whole default history (read-only: copy it to change it)."""
    db_path = tmp_path_factory.mktemp("cf-history") / "history.duckdb"
    run_cycle(dg.DagsterInstance.ephemeral(), db_path)
    return db_path


@pytest.fixture
def warehouse(history, tmp_path) -> Path:
    """A private copy of the history warehouse."""
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(history, target)
    return target


@pytest.fixture(scope="session")
def marginal_pools(tmp_path_factory) -> Path:
    """The default pools with every pool on the marginal-return policy (it moves money
    every week on the default account)."""
    raw = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    for pool in raw["pools"]:
        pool["policy"] = "marginal_return"
    path = tmp_path_factory.mktemp("cf-pools") / "pools_marginal.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def launch_counterfactual(
    instance: dg.DagsterInstance,
    db_path: Path,
    keys: list[str] = ALL_KEYS,
    *,
    pools_path: Path = DEFAULT_POOLS_PATH,
    run_config: dict | None = None,
    selection: str | None = None,
) -> dg.ExecuteInProcessResult:
    """The counterfactual group (or one asset of it) over ``keys`` as ONE run, as the UI
    launches a single-run backfill of a range."""
    defs = definitions(db_path, pools_path)
    chosen = (
        dg.AssetSelection.assets(selection)
        if selection
        else dg.AssetSelection.groups("counterfactual")
    )
    return dg.materialize(
        list(defs.assets),
        instance=instance,
        resources=dict(defs.resources),
        selection=chosen,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
        run_config=run_config,
        raise_on_error=False,
    )


@pytest.fixture(scope="session")
def counterfactual() -> Callable[..., dg.ExecuteInProcessResult]:
    return launch_counterfactual


def table(db_path: Path, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        frame = con.sql(f"SELECT * FROM {name}").pl()
        return frame.drop("created_at", strict=False)
    finally:
        con.close()


@pytest.fixture(scope="session")
def read_table() -> Callable[[Path, str], pl.DataFrame]:
    return table
