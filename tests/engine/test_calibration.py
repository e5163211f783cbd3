"""Calibrating a pool's thresholds from its observation phase (issue 9, SPEC §9)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import yaml

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig, ScoreThresholds
from budget_pipeline.engine.calibration import HEALTHY, pools_yaml, propose_thresholds

T0 = datetime(2026, 9, 1)
CONFIG = PoolsConfig(pools=[{"name": "p", "tier": 1, "floor": 0, "ceiling": 1_000}])


def noisy_scores(entities: int = 12, days: int = 28, seed: int = 3) -> pl.DataFrame:
    """Nothing changing: scores wobble around 0.5 and deviations are only noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(entities):
        drift = 0.0
        for d in range(days):
            drift = 0.6 * drift + rng.normal(0, 0.8)  # noise correlated from day to day
            rows.append(
                {"entity_id": f"e{e}", "entity_type": "adset", "campaign_id": f"c{e}",
                 "pool": "p", "as_of": T0 + timedelta(days=d), "status": "scored",
                 "score": float(np.clip(0.5 + 0.07 * drift, 0, 1)), "evidence_z": drift}
            )  # fmt: skip
    frame = pl.DataFrame(rows)
    missing = {c: pl.lit(None, t) for c, t in contracts.SCORES.items() if c not in frame.columns}
    return contracts.conform(frame.with_columns(**missing), contracts.SCORES)


def test_the_proposal_fires_at_a_healthy_rate_and_never_pauses_on_noise():
    scores = noisy_scores()
    (row,) = propose_thresholds(scores, CONFIG).iter_rows(named=True)
    assert row["weeks"] == 4.0 and row["entities"] == 12
    assert HEALTHY[0] <= row["proposed_fires_per_week"] <= HEALTHY[1]
    assert row["proposed_pauses_per_week"] == 0
    assert row["proposed_pause_below"] < scores["score"].min()
    assert (
        row["proposed_pause_below"]
        <= row["proposed_decrease_below"]
        < 0.5
        < row["proposed_increase_above"]
    )
    # the documented defaults fire otherwise on the same noise: the evidence says how often
    assert row["fires_per_week"] != row["proposed_fires_per_week"]


def test_the_fragment_is_a_pools_file_the_loader_accepts():
    proposal = propose_thresholds(noisy_scores(), CONFIG)
    fragment = yaml.safe_load(pools_yaml(proposal))
    (pool,) = fragment["pools"]
    assert pool["name"] == "p"
    accepted = ScoreThresholds.model_validate(pool["thresholds"])
    assert accepted.credible_z == proposal["proposed_credible_z"][0]
