"""Inputs for the marginal policy's tests: marginal_return pools, active ad sets each with its
own daily budget (campaign ``c_<id>``), and scores on baseline (0.5, no evidence either way)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig


def marginal_pools(*names: str, ceiling: int = 10_000_000) -> PoolsConfig:
    """Tier-1 pools (default: one, ``p``) with floor 0, run by the marginal policy."""
    return PoolsConfig(
        pools=[
            {"name": n, "tier": 1, "floor": 0, "ceiling": ceiling, "policy": "marginal_return"}
            for n in names or ("p",)
        ]
    )


def adsets(budgets: dict[str, int], pools: dict[str, str] | None = None) -> pl.DataFrame:
    """contracts.AD_ENTITIES: each ad set ACTIVE at its budget (minor units), in pool ``p``
    unless ``pools`` names another."""
    pools = pools or {}
    return pl.DataFrame(
        [{"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "name": e,
          "status": "ACTIVE", "budget_type": "daily", "daily_budget": b, "currency": "EUR",
          "pool": pools.get(e, "p"), "locked": False} for e, b in budgets.items()],
        schema=contracts.AD_ENTITIES,
    )  # fmt: skip


def neutral_scores(pools: dict[str, str], as_of: datetime) -> pl.DataFrame:
    """contracts.SCORES at ``as_of``: every ad set of ``pools`` (id → pool) scored 0.5."""
    frame = pl.DataFrame(
        [{"entity_id": e, "entity_type": "adset", "campaign_id": f"c_{e}", "pool": p,
          "as_of": as_of, "status": "scored", "score": 0.5, "evidence_z": 0.0}
         for e, p in pools.items()]
    )  # fmt: skip
    missing = {c: pl.lit(None, t) for c, t in contracts.SCORES.items() if c not in frame.columns}
    return contracts.conform(frame.with_columns(**missing), contracts.SCORES)
