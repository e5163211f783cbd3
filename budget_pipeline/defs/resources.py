"""Resources: the DuckDB warehouse, the ad account (Marketing API or simulated) and the pools.

Connections are opened inside methods and always closed, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from budget_pipeline import settings
from budget_pipeline.config.accounts import scenario_account_id
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import PoolsConfig, load_pools
from budget_pipeline.defs.scope import AccountScope
from budget_pipeline.sources.accounts import open_source
from budget_pipeline.sources.base import AdSource
from budget_pipeline.warehouse_schema import ensure_schema


class WarehouseLockedError(RuntimeError):
    """The DuckDB file is held by another process."""


class Warehouse(DuckDBResource):
    """The DuckDB file. ``connect()`` creates the tables, fails fast if another process holds
    the file (instead of the base resource's silent retries) and always closes."""

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # Not a DuckDB file, a directory, an unwritable folder: a ConfigError naming
        # BUDGET_PIPELINE_DB and the path, before anything is created.
        path = settings.check_db_path(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path), config={"custom_user_agent": "budget_pipeline"})
        except duckdb.Error as exc:  # a lock held elsewhere, or a damaged file
            if not (isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()):
                raise ConfigError(
                    f"BUDGET_PIPELINE_DB={path}: DuckDB cannot open it: {exc}"
                ) from None
            raise WarehouseLockedError(
                f"DuckDB file {path} is in use by another process (DuckDB allows one writer): "
                f"{exc}. Runs are serialised by the 'duckdb_write' pool in dagster.yaml; stop "
                "the other process or point BUDGET_PIPELINE_DB elsewhere."
            ) from None
        try:
            ensure_schema(con)  # one row read when the file is up to date
            yield con
        finally:
            con.close()


class PoolsResource(dg.ConfigurableResource):
    """The pools file (BUDGET_PIPELINE_POOLS), validated on every load."""

    path: str

    def load(self) -> PoolsConfig:
        return load_pools(self.path)


class AdAccount(dg.ConfigurableResource):
    """The ad account: the Marketing API when META_ACCESS_TOKEN is set, else the simulated one.

    The token is read from the environment inside the call, so it never appears in run
    config, the UI or the warehouse. ``name`` is the account's name in the accounts file
    ("" for the single account) and ``ad_account_id`` its Marketing API account (default
    META_AD_ACCOUNT_ID); :meth:`scope` is what every per-account lookup uses.
    """

    scenario_path: str
    name: str = ""
    ad_account_id: str = ""

    @property
    def uses_api(self) -> bool:
        return bool(os.environ.get("META_ACCESS_TOKEN"))

    @property
    def account_id(self) -> str:
        """The ad account id (act_…): the API's, else the simulated scenario's."""
        if self.uses_api:
            return self.ad_account_id or os.environ.get("META_AD_ACCOUNT_ID", "").strip()
        return scenario_account_id(self.scenario_path)

    def scope(self) -> AccountScope:
        return AccountScope(self.account_id, self.name)

    def open(self, con: duckdb.DuckDBPyConnection, config: PoolsConfig | None = None) -> AdSource:
        return open_source(
            con,
            scenario_path=self.scenario_path,
            config=config,
            ad_account_id=self.ad_account_id or None,
        )

    def describe(self) -> str:
        if self.uses_api:
            return f"Marketing API, account {self.account_id or '?'}"
        return f"simulated account ({Path(self.scenario_path).name})"


def default_resources() -> dict[str, object]:
    return {
        "warehouse": Warehouse(database=str(settings.db_path())),
        "pools": PoolsResource(path=str(settings.pools_path())),
        "account": AdAccount(scenario_path=str(settings.scenario_path())),
    }
