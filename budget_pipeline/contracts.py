"""The frames that pass between sources, engine and assets: column names and polars dtypes.

Every source (simulated account, Marketing API client) hands the engine these shapes; every
engine function documents which of them it takes and returns. Budgets are Int64 minor units;
Insights metrics are major units (spend, value) or counts.
"""

from __future__ import annotations

import polars as pl

# One row per campaign and per ad set, as the source reports them (no pool yet).
ENTITIES: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),  # "campaign" | "adset"
    "campaign_id": pl.Utf8(),  # the campaign itself for a campaign row
    "name": pl.Utf8(),
    "status": pl.Utf8(),  # "ACTIVE" | "PAUSED"
    "budget_type": pl.Utf8(),  # "daily" | "lifetime" | null (budget held by the CBO campaign)
    "daily_budget": pl.Int64(),  # minor units, null unless budget_type == "daily"
    "lifetime_budget": pl.Int64(),  # minor units, null unless budget_type == "lifetime"
    "budget_remaining": pl.Int64(),  # minor units, lifetime budgets only
    "end_date": pl.Date(),  # lifetime budgets: last local day of delivery
    "currency": pl.Utf8(),
}
# ad_entities adds the pool the config assigns and whether the entity is locked.
AD_ENTITIES: dict[str, pl.DataType] = {**ENTITIES, "pool": pl.Utf8(), "locked": pl.Boolean()}

# Hourly ad-set Insights, one row per (adset_id, date, hour), account-local time.
INSIGHTS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "hour": pl.Int8(),  # 0..23, local hour of the account timezone
    "campaign_id": pl.Utf8(),
    "adset_id": pl.Utf8(),
    "spend": pl.Float64(),  # major units
    "impressions": pl.Int64(),
    "reach": pl.Int64(),  # people reached for the first time in the trailing 7 days
    "clicks": pl.Int64(),
    "conversions": pl.Float64(),  # the configured conversion action (e.g. purchase)
    "purchase_value": pl.Float64(),  # major units
}

# composite_scores: one row per scored entity and evaluation time. Entities are ad sets, plus
# CBO campaigns (their budget lives on the campaign; their metrics are their ad sets' sums).
SCORES: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),  # "adset" | "campaign"
    "campaign_id": pl.Utf8(),
    "pool": pl.Utf8(),
    "as_of": pl.Datetime("us"),  # end of the evaluation interval (naive, account-local)
    "status": pl.Utf8(),  # "scored" | "insufficient_data"
    "score": pl.Float64(),  # null when insufficient_data; in [0, 1], 0.5 = on baseline
    "s_roas": pl.Float64(),
    "s_cpa": pl.Float64(),
    "s_frequency": pl.Float64(),
    "s_engagement": pl.Float64(),
    "s_velocity": pl.Float64(),
    "spend": pl.Float64(),  # spend in the lookback window
    "roas": pl.Float64(),
    "cpa": pl.Float64(),
    "frequency": pl.Float64(),
    "ctr": pl.Float64(),
    "baseline_roas": pl.Float64(),
    "baseline_cpa": pl.Float64(),
    "baseline_ctr": pl.Float64(),
    # standard deviations by which ROAS differs from the entity's own baseline, given its
    # purchase count (engine.credibility); the score triggers act only beyond credible_z
    "evidence_z": pl.Float64(),
    "reason": pl.Utf8(),  # why insufficient, or the dominant component
}

# Fired trigger actions that the planner turns into moves.
ACTIONS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "action": pl.Utf8(),  # increase | decrease | pause | alert | flag_creative
    "pct": pl.Float64(),  # requested change in percent (positive), null for pause/alert
    "trigger": pl.Utf8(),  # trigger name, e.g. "score_above_0.85x3"
    "score": pl.Float64(),
    "as_of": pl.Datetime("us"),
}

# rebalance_plan: one row per budget holder in a pool (moved or not), budgets in minor units.
# A budget holder is an ad set with its own daily budget, or a CBO campaign.
PLAN: dict[str, pl.DataType] = {
    "plan_id": pl.Utf8(),
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "pool": pl.Utf8(),
    "tier": pl.Int64(),
    "old_budget": pl.Int64(),
    "new_budget": pl.Int64(),
    "delta": pl.Int64(),
    "target_budget": pl.Int64(),  # where the trigger wants to go; glide path if != new_budget
    "pause": pl.Boolean(),
    "action": pl.Utf8(),  # increase | decrease | pause | hold
    "trigger": pl.Utf8(),
    "score": pl.Float64(),
    "reason": pl.Utf8(),  # trigger, scores, and the constraint that bound the move
}


# trigger_states: one row per (entity, trigger), carried across runs.
TRIGGER_STATE: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "trigger": pl.Utf8(),
    "streak": pl.Int64(),  # consecutive evaluation intervals the condition held
    "condition_met": pl.Boolean(),  # at the last evaluation
    "last_eval_at": pl.Datetime("us"),
    "last_fired_at": pl.Datetime("us"),
    "cooldown_until": pl.Datetime("us"),
}

# Last budget changes per entity (from the action log), for the minimum-interval guard.
LAST_CHANGES: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "changed_at": pl.Datetime("us"),  # most recent applied change
    "changes_last_hour": pl.Int64(),  # edits in the hour before the plan's as_of
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast ``frame`` to ``schema``'s columns, in order; missing columns raise."""
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing columns {missing}; has {frame.columns}")
    return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
