"""Open the account the pipeline works on: the Marketing API when a token is set, else the
simulated account, whose state (clock and applied budget changes) lives in the warehouse."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.sql import load_sql


class SimulatedSource:
    """The simulated account behind the :class:`~budget_pipeline.sources.base.AdSource` API.

    Budget writes change the simulated account and are saved to ``simulated_account_state``
    on the given connection, so the next run sees them.
    """

    def __init__(self, account, con: duckdb.DuckDBPyConnection | None, key: str):
        self.account = account
        self._con = con
        self._key = key
        self.account_id = account.account_id
        self.currency = account.currency
        self.timezone = account.timezone

    @property
    def now(self) -> datetime:
        return self.account.now

    def entities(self) -> pl.DataFrame:
        return self.account.entities()

    def hourly_insights(self, start: date, end: date) -> pl.DataFrame:
        return self.account.hourly_insights(start, end)

    def read_budget(self, entity_id: str) -> dict:
        rows = self.account.entities().filter(pl.col("entity_id") == entity_id)
        if rows.height != 1:
            raise KeyError(f"unknown entity id {entity_id!r} in the simulated account")
        row = rows.row(0, named=True)
        return {k: row[k] for k in ("budget_type", "daily_budget", "lifetime_budget", "status")}

    def write_budget(
        self, entity_id: str, *, daily_budget: int | None = None, lifetime_budget: int | None = None
    ) -> None:
        self.account.apply_budget_change(
            entity_id, daily_budget=daily_budget, lifetime_budget=lifetime_budget
        )
        self._save()

    def set_status(self, entity_id: str, status: str) -> None:
        self.account.set_status(entity_id, status)
        self._save()

    def advance(self, hours: int) -> None:
        """Move the simulated account's clock forward (the new hours run on the budgets in
        effect) and save it, so the next run sees the later time."""
        self.account.advance(hours)
        self._save()

    def _save(self) -> None:
        if self._con is not None:
            self._con.execute(
                load_sql("upsert_simulated_account_state"),
                {
                    "scenario": self._key,
                    "state": json.dumps(self.account.state(), default=str),
                    "updated_at": datetime.now(UTC).replace(tzinfo=None),
                },
            )


def open_simulated(
    con: duckdb.DuckDBPyConnection | None, scenario_path: str | Path
) -> SimulatedSource:
    from budget_pipeline.sources.simulated import SimulatedAccount, load_scenario

    path = Path(scenario_path)
    scenario = load_scenario(path)
    key = str(path.resolve())
    state = None
    if con is not None:
        raw = db.scalar(con, "select_simulated_account_state", {"scenario": key})
        state = json.loads(raw) if raw else None
    # Every step opens the account afresh: they share the days simulated in this process.
    return SimulatedSource(SimulatedAccount(scenario, state, share_days=True), con, key)


def conversion_by_campaign(config, con: duckdb.DuckDBPyConnection | None) -> dict[str, str]:
    """Campaign id → the conversion action of its pool, for pools that set their own."""
    if config is None or con is None:
        return {}
    actions = {p.name: p.conversion_action for p in config.pools if p.conversion_action}
    if not actions:
        return {}
    rows = db.read(con, "select_ad_entities").filter(pl.col("entity_type") == "campaign")
    return {
        cid: actions[pool]
        for cid, pool in rows.select("campaign_id", "pool").iter_rows()
        if pool in actions
    }


def open_source(
    con: duckdb.DuckDBPyConnection | None,
    *,
    scenario_path: str | Path,
    config=None,
    ad_account_id: str | None = None,
):
    """The Marketing API source when ``META_ACCESS_TOKEN`` is set, else the simulated one.

    ``ad_account_id`` (one account of the accounts file) replaces ``META_AD_ACCOUNT_ID``.

    ``config`` (the pools config) gives the API source its conversion action: the account
    default and each pool's own (via the pools of the campaigns in ``ad_entities``).
    """
    if os.environ.get("META_ACCESS_TOKEN"):
        from budget_pipeline.sources.meta_api import ConversionSpec, MetaApiSource

        conversion = ConversionSpec(
            default=config.settings.conversion_action if config else "purchase",
            by_campaign=conversion_by_campaign(config, con),
        )
        poll = os.environ.get("META_ASYNC_POLL_SECONDS", "").strip()
        options = {"poll_interval": float(poll)} if poll else {}
        env = {**os.environ, "META_AD_ACCOUNT_ID": ad_account_id} if ad_account_id else None
        source = MetaApiSource.from_env(env, conversion=conversion, **options)
        if source is not None:
            return source
    return open_simulated(con, scenario_path)
