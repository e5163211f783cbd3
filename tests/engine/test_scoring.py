"""The composite score: own baseline, per-pool weights, insufficient data, CBO campaigns."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from budget_pipeline import insights_rollup
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import AD_ENTITIES, SCORES
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.signals import entity_baselines, window_metrics
from budget_pipeline.warehouse_schema import ensure_schema

START = datetime(2024, 4, 1)
AS_OF = START + timedelta(days=40)


def _config(**settings) -> PoolsConfig:
    return PoolsConfig.model_validate(
        {
            # evidence_conversions 0: worked numbers of the raw formula
            "settings": {"lookback_hours": 72, "evidence_conversions": 0, **settings},
            "pools": [
                {
                    "name": "prospecting",
                    "tier": 2,
                    "floor": 500,
                    "ceiling": 2000,
                    "weights": {"roas": 0.35, "cpa": 0.25, "frequency": 0.30, "engagement": 0.10},
                    "members": {"campaign_names": ["PR | *"]},
                },
                {
                    "name": "retargeting",
                    "tier": 1,
                    "floor": 200,
                    "ceiling": 600,
                    "weights": {"roas": 0.30, "cpa": 0.45, "frequency": 0.15, "engagement": 0.10},
                    "members": {"campaign_names": ["RT | *"]},
                },
            ],
        }
    )


def _entities(rows: list[tuple]) -> pl.DataFrame:
    """rows: (entity_id, entity_type, campaign_id, budget_type, pool)."""
    return pl.DataFrame(
        {
            "entity_id": [r[0] for r in rows],
            "entity_type": [r[1] for r in rows],
            "campaign_id": [r[2] for r in rows],
            "name": [r[0] for r in rows],
            "status": ["ACTIVE"] * len(rows),
            "budget_type": [r[3] for r in rows],
            "daily_budget": [10_000 if r[3] == "daily" else None for r in rows],
            "lifetime_budget": [None] * len(rows),
            "budget_remaining": [None] * len(rows),
            "end_date": [None] * len(rows),
            "currency": ["EUR"] * len(rows),
            "pool": [r[4] for r in rows],
            "locked": [False] * len(rows),
        },
        schema=AD_ENTITIES,
    )


def _warehouse(tmp_path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_schema(con)
    return con


def _deliver(con, adset, campaign, *, hourly_spend, roas, cpa, days=40, every=1, noise=0.0):
    """Hourly rows from START for ``days`` days (every ``every``-th day), at a steady ROAS,
    CPA, 2 % CTR and frequency 2, with a small deterministic +-noise on value."""
    con.execute(
        """
        INSERT INTO insights (date, hour, ts, campaign_id, adset_id, spend, impressions, reach, clicks, conversions, purchase_value, pulled_at)
        SELECT ts::DATE, hour(ts), ts, $campaign, $adset, $spend,
               100, 50, 2, $spend / $cpa,
               $spend * $roas * (1 + $noise * CASE WHEN hour(ts) % 2 = 0 THEN 1 ELSE -1 END),
               ts
        FROM range($start, $start + to_days($days), INTERVAL 1 HOUR) AS t(ts)
        WHERE datediff('day', $start, ts) % $every = 0
        """,
        {
            "campaign": campaign,
            "adset": adset,
            "spend": hourly_spend,
            "roas": roas,
            "cpa": cpa,
            "noise": noise,
            "start": START,
            "days": days,
            "every": every,
        },
    )


def _score(con, entities, config, points=(AS_OF,)) -> pl.DataFrame:
    insights_rollup.refresh(con)  # the tests write hours directly; the merge would roll up
    points = list(points)
    windows = window_metrics(con, points, [72])
    baselines = entity_baselines(con, points, settings=config.settings, entities=entities)
    out = score_entities(windows, baselines, entities, config)
    assert out.schema == pl.Schema(SCORES)
    return out


def test_prospecting_adset_is_judged_against_its_own_baseline_not_the_account(tmp_path):
    con = _warehouse(tmp_path)
    # the account: retargeting returns 4.2, the prospecting ad set 1.8 → account ROAS ≈ 3
    _deliver(con, "rt1", "RT | warm", hourly_spend=5.0, roas=4.2, cpa=10.0)
    _deliver(con, "pr1", "PR | broad", hourly_spend=5.0, roas=1.8, cpa=25.0, noise=0.01)
    (spend, value) = con.execute("SELECT sum(spend), sum(purchase_value) FROM insights").fetchone()
    assert value / spend == pytest.approx(3.0, abs=0.01)

    entities = _entities(
        [
            ("RT | warm", "campaign", "RT | warm", None, "retargeting"),
            ("rt1", "adset", "RT | warm", "daily", "retargeting"),
            ("PR | broad", "campaign", "PR | broad", None, "prospecting"),
            ("pr1", "adset", "PR | broad", "daily", "prospecting"),
        ]
    )
    scores = _score(con, entities, _config())
    pr1 = scores.filter(pl.col("entity_id") == "pr1").row(0, named=True)
    assert pr1["status"] == "scored"
    assert pr1["roas"] == pytest.approx(1.8, abs=1e-9)
    assert pr1["baseline_roas"] == pytest.approx(1.8, abs=1e-9)
    assert pr1["score"] == pytest.approx(0.5, abs=0.01)
    assert pr1["pool"] == "prospecting"
    assert pr1["reason"].startswith("roas 1.80 vs own baseline 1.80 (s=0.50)")
    assert pr1["reason"].endswith("dominant: none (on baseline)")
    # the retargeting ad set is on its own baseline too, though its ROAS is far higher
    rt1 = scores.filter(pl.col("entity_id") == "rt1").row(0, named=True)
    assert rt1["score"] == pytest.approx(0.5, abs=1e-9)


def test_composite_uses_the_pools_weights_and_reason_names_the_dominant_signal(tmp_path):
    con = _warehouse(tmp_path)
    # both ad sets: 37 days at ROAS 1.8 / CPA 20, then 3 days at ROAS 3.6 / CPA 20
    for adset, campaign in (("pr1", "PR | a"), ("rt1", "RT | a")):
        _deliver(con, adset, campaign, hourly_spend=5.0, roas=1.8, cpa=20.0, days=37)
    for adset, campaign in (("pr1", "PR | a"), ("rt1", "RT | a")):
        con.execute(
            """INSERT INTO insights (date, hour, ts, campaign_id, adset_id, spend, impressions, reach, clicks, conversions, purchase_value, pulled_at) SELECT ts::DATE, hour(ts), ts, $c, $a, 5.0, 100, 50, 2,
               0.25, 18.0, ts FROM range($s, $e, INTERVAL 1 HOUR) t(ts)""",
            {"a": adset, "c": campaign, "s": START + timedelta(days=37), "e": AS_OF},
        )
    entities = _entities(
        [
            ("PR | a", "campaign", "PR | a", None, "prospecting"),
            ("pr1", "adset", "PR | a", "daily", "prospecting"),
            ("RT | a", "campaign", "RT | a", None, "retargeting"),
            ("rt1", "adset", "RT | a", "daily", "retargeting"),
        ]
    )
    scores = _score(con, entities, _config())
    got = dict(scores.select("entity_id", "score").iter_rows())
    # s_roas = 0.8 (ROAS doubled, k=2); every other component 0.5
    assert got["pr1"] == pytest.approx(0.35 * 0.8 + 0.65 * 0.5)
    assert got["rt1"] == pytest.approx(0.30 * 0.8 + 0.70 * 0.5)
    reason = scores.filter(pl.col("entity_id") == "pr1")["reason"][0]
    assert reason.startswith("roas 3.60 vs own baseline 1.80 (s=0.80); cpa 20.00 vs 20.00")
    assert reason.endswith("dominant: roas (+0.105)")


def test_insufficient_history_or_spend_is_never_scored(tmp_path):
    con = _warehouse(tmp_path)
    # new: only the last 9 days → 6 baseline days before the 72 h window
    _deliver(con, "new", "PR | new", hourly_spend=5.0, roas=2.0, cpa=20.0)
    con.execute(
        "DELETE FROM insights WHERE adset_id = 'new' AND ts < $s", {"s": AS_OF - timedelta(days=9)}
    )
    # thin: 30 baseline days but 0.25/h → 180 spend
    _deliver(con, "thin", "PR | thin", hourly_spend=0.25, roas=2.0, cpa=20.0)
    entities = _entities(
        [
            ("PR | new", "campaign", "PR | new", None, "prospecting"),
            ("new", "adset", "PR | new", "daily", "prospecting"),
            ("PR | thin", "campaign", "PR | thin", None, "prospecting"),
            ("thin", "adset", "PR | thin", "daily", "prospecting"),
        ]
    )
    scores = _score(con, entities, _config())
    new = scores.filter(pl.col("entity_id") == "new").row(0, named=True)
    thin = scores.filter(pl.col("entity_id") == "thin").row(0, named=True)
    for row in (new, thin):
        assert row["status"] == "insufficient_data"
        assert row["score"] is None and row["s_roas"] is None
    assert new["reason"] == "insufficient_data: 6 active baseline days (< 7 required)"
    assert thin["reason"] == "insufficient_data: baseline spend 180.00 (< 300.00 required)"


def test_cbo_campaign_is_scored_on_its_adsets_sums(tmp_path):
    con = _warehouse(tmp_path)
    # two ad sets active on alternate days: 15 active baseline days each, 30 together;
    # each has 15 × 24 × 0.5 = 180 baseline spend (< 300), the campaign 360
    _deliver(con, "x1", "PR | cbo", hourly_spend=0.5, roas=2.0, cpa=20.0, every=2)
    con.execute(
        """INSERT INTO insights (date, hour, ts, campaign_id, adset_id, spend, impressions, reach, clicks, conversions, purchase_value, pulled_at) SELECT ts::DATE, hour(ts), ts, 'PR | cbo', 'x2', 0.5, 100, 50,
           2, 0.025, 0.5 * 4.0, ts FROM range($s, $e, INTERVAL 1 HOUR) t(ts)
           WHERE datediff('day', $s, ts) % 2 = 1""",
        {"s": START, "e": START + timedelta(days=40)},
    )
    entities = _entities(
        [
            ("PR | cbo", "campaign", "PR | cbo", "daily", "prospecting"),
            ("x1", "adset", "PR | cbo", None, None),  # pool from its campaign
            ("x2", "adset", "PR | cbo", None, None),
            ("orphan", "adset", "NOPE", "daily", None),  # no pool: dropped
        ]
    )
    con.execute(
        """INSERT INTO insights (date, hour, ts, campaign_id, adset_id, spend, impressions, reach, clicks, conversions, purchase_value, pulled_at) SELECT ts::DATE, hour(ts), ts, 'NOPE', 'orphan', 1, 1, 1, 0,
           0, 0, ts FROM range($s, $e, INTERVAL 1 HOUR) t(ts)""",
        {"s": START, "e": AS_OF},
    )
    scores = _score(con, entities, _config())
    assert "orphan" not in scores["entity_id"].to_list()
    by_id = {r["entity_id"]: r for r in scores.iter_rows(named=True)}
    assert by_id["x1"]["status"] == by_id["x2"]["status"] == "insufficient_data"
    cbo = by_id["PR | cbo"]
    assert (cbo["entity_type"], cbo["campaign_id"], cbo["status"]) == (
        "campaign",
        "PR | cbo",
        "scored",
    )
    assert cbo["spend"] == pytest.approx(by_id["x1"]["spend"] + by_id["x2"]["spend"])
    # ratio of sums, not a mean of ratios: value / spend over both ad sets
    assert cbo["roas"] == pytest.approx(
        (2.0 * by_id["x1"]["spend"] + 4.0 * by_id["x2"]["spend"]) / cbo["spend"]
    )
    assert cbo["baseline_roas"] == pytest.approx(3.0)
    assert 0.0 <= cbo["score"] <= 1.0


def test_several_evaluation_points(tmp_path):
    con = _warehouse(tmp_path)
    _deliver(con, "pr1", "PR | a", hourly_spend=5.0, roas=2.0, cpa=20.0)
    entities = _entities(
        [
            ("PR | a", "campaign", "PR | a", None, "prospecting"),
            ("pr1", "adset", "PR | a", "daily", "prospecting"),
        ]
    )
    points = [AS_OF - timedelta(days=1), AS_OF]
    scores = _score(con, entities, _config(), points)
    assert scores["as_of"].to_list() == points
    assert scores["score"].to_list() == pytest.approx([0.5, 0.5])
