"""Triggers feeding the planner: money moves on a sustained signal, not on one noisy interval."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import AD_ENTITIES, SCORES, TRIGGER_STATE, conform, empty
from budget_pipeline.engine.policy import plan_with_policies as plan_rebalance
from budget_pipeline.engine.signals import WINDOW_METRICS
from budget_pipeline.engine.triggers import evaluate_triggers

T0 = datetime(2026, 10, 1)
CONFIG = PoolsConfig.model_validate(
    {
        "pools": [
            {"name": "prospecting", "tier": 2, "floor": 100, "ceiling": 1000,
             "members": {"campaign_names": ["PR | *"]}, "policy": "composite"},
        ]
    }
)  # fmt: skip


def _entities() -> pl.DataFrame:
    rows = [
        ("c1", "campaign", "c1", "PR | broad", None, None),
        ("a", "adset", "c1", "a", "daily", 10_000),
        ("b", "adset", "c1", "b", "daily", 10_000),
    ]
    frame = pl.DataFrame(
        rows,
        schema=["entity_id", "entity_type", "campaign_id", "name", "budget_type", "daily_budget"],
        orient="row",
    ).with_columns(
        status=pl.lit("ACTIVE"),
        lifetime_budget=pl.lit(None, pl.Int64),
        budget_remaining=pl.lit(None, pl.Int64),
        end_date=pl.lit(None, pl.Date),
        currency=pl.lit("EUR"),
        pool=pl.lit("prospecting"),
        locked=pl.lit(False),
    )
    return conform(frame, AD_ENTITIES)


def _scores(a_scores: list[float]) -> pl.DataFrame:
    """Ad set a's score at consecutive daily points; b sits a little above baseline."""
    rows = []
    for i, a_score in enumerate(a_scores):
        as_of = T0 + timedelta(days=i)
        for entity, score in (("a", a_score), ("b", 0.62)):
            rows.append({"entity_id": entity, "entity_type": "adset", "campaign_id": "c1",
                         "pool": "prospecting", "as_of": as_of, "status": "scored",
                         "score": score, "spend": 300.0, "reason": "test",
                         "evidence_z": 0.0 if score == 0.5 else (3.0 if score > 0.5 else -3.0)})  # fmt: skip
    frame = pl.DataFrame(rows)
    missing = {c: pl.lit(None, t) for c, t in SCORES.items() if c not in frame.columns}
    return conform(frame.with_columns(**missing), SCORES)


def _decide(a_scores: list[float]) -> pl.DataFrame:
    scores = _scores(a_scores)
    _, actions = evaluate_triggers(scores, empty(WINDOW_METRICS), empty(TRIGGER_STATE), CONFIG)
    as_of = scores["as_of"].max()
    latest = scores.filter(pl.col("as_of") == as_of)
    return plan_rebalance(_entities(), latest, actions, CONFIG, as_of=as_of)


def test_a_single_interval_dip_moves_no_money():
    plan = _decide([0.62, 0.62, 0.45])  # below 0.55 once; the decrease needs 2 in a row
    assert plan["delta"].to_list() == [0, 0]
    assert not plan["pause"].any()


def test_a_sustained_dip_moves_money_to_the_better_ad_set_and_conserves_it():
    plan = _decide([0.62, 0.45, 0.45]).sort("entity_id")
    a, b = plan.row(0, named=True), plan.row(1, named=True)
    assert a["delta"] < 0 < b["delta"]
    assert a["delta"] + b["delta"] == 0
    # decrease 25 % wanted, one step capped at the 15 % learning cap: 100.00 -> 85.00
    assert a["new_budget"] == 8_500 and a["target_budget"] == 7_500
    assert "score_below_0.55" in a["reason"]


def test_a_collapse_acts_at_once_and_its_money_keeps_spending():
    # The pause fires on one interval. b can take one capped step (15.00) of a's 100.00, so the
    # pause waits (its money would otherwise stop spending) and a is cut by one step instead.
    plan = _decide([0.62, 0.62, 0.20]).sort("entity_id")
    a, b = plan.row(0, named=True), plan.row(1, named=True)
    assert not a["pause"] and a["new_budget"] == 8_500 and a["target_budget"] == 0
    assert "pause waits" in a["reason"] and b["delta"] == 1_500
    assert plan["new_budget"].sum() == plan["old_budget"].sum()
