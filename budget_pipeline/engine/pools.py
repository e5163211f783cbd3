"""Which pool each campaign and ad set belongs to, and which entities are locked."""

from __future__ import annotations

import polars as pl

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import AD_ENTITIES, ENTITIES, conform


def assign_pools(entities: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Add ``pool`` (by campaign id, then name pattern) and ``locked`` to source entities.

    An ad set takes its campaign's pool. Campaigns no pool claims get a null pool and are
    never moved. Returns contracts.AD_ENTITIES.
    """
    entities = conform(entities, ENTITIES)
    campaigns = entities.filter(pl.col("entity_type") == "campaign").select("campaign_id", "name")
    # One lookup per campaign (tens of them), not per row; joined back below.
    mapping = pl.DataFrame(
        {
            "campaign_id": campaigns["campaign_id"],
            "pool": [config.pool_for_campaign(cid, name) for cid, name in campaigns.iter_rows()],
        },
        schema={"campaign_id": pl.Utf8(), "pool": pl.Utf8()},
    )
    locked = sorted({e for p in config.pools for e in p.locked})
    out = entities.join(mapping, on="campaign_id", how="left").with_columns(
        locked=pl.col("entity_id").is_in(locked) | pl.col("campaign_id").is_in(locked)
    )
    return conform(out, AD_ENTITIES)


def pool_summary(entities: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Per pool: tier, floor, ceiling, members and the daily budget they hold (minor units)."""
    holders = entities.filter(pl.col("budget_type") == "daily", pl.col("pool").is_not_null())
    totals = holders.group_by("pool").agg(
        budget_holders=pl.len(), daily_budget=pl.col("daily_budget").sum()
    )
    bounds = pl.DataFrame(
        {
            "pool": [p.name for p in config.pools],
            "tier": [p.tier for p in config.pools],
            "mode": [p.mode for p in config.pools],
            "floor": [config.floor_minor(p.name) for p in config.pools],
            "ceiling": [config.ceiling_minor(p.name) for p in config.pools],
        }
    )
    return bounds.join(totals, on="pool", how="left").fill_null(0).sort("tier", "pool")
