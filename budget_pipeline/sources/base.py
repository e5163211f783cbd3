"""What every source of ad data hands the pipeline: the simulated account and the Marketing API.

The extraction assets only ever talk to an :class:`AdSource`; the executor only to its budget
methods. Frames follow :mod:`budget_pipeline.contracts`.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

import polars as pl


@runtime_checkable
class AdSource(Protocol):
    account_id: str  # "act_<digits>"
    currency: str  # ISO 4217
    timezone: str  # IANA name of the ad account's timezone

    def entities(self) -> pl.DataFrame:
        """Campaigns and ad sets with budgets and status now (contracts.ENTITIES)."""
        ...

    def hourly_insights(self, start: date, end: date) -> pl.DataFrame:
        """Hourly ad-set Insights for local dates start..end inclusive (contracts.INSIGHTS)."""
        ...

    def read_budget(self, entity_id: str) -> dict:
        """Current ``{"budget_type", "daily_budget", "lifetime_budget", "status"}`` of one entity."""
        ...

    def write_budget(
        self, entity_id: str, *, daily_budget: int | None = None, lifetime_budget: int | None = None
    ) -> None:
        """Set one entity's budget, in minor units."""
        ...

    def set_status(self, entity_id: str, status: str) -> None:
        """``"ACTIVE"`` or ``"PAUSED"``."""
        ...
