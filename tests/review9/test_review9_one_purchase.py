"""Review 9: one large purchase moves money for days (the gate counts purchases, not value)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from marginal_helpers import adsets, marginal_pools, neutral_scores

from budget_pipeline import contracts
from budget_pipeline.engine.policy import plan_with_policies

AS_OF = datetime(2026, 10, 30)
DAYS = 42


def _history(whale: float, age_days: int) -> pl.DataFrame:
    """Two ad sets at 100.00/day, ROAS 2 (Poisson purchases of 50.00); ``b`` also got one
    purchase worth ``whale`` ``age_days`` days before AS_OF (1 = yesterday)."""
    rng = np.random.default_rng(3)
    rows = []
    for adset in ("a", "b"):
        for d in range(DAYS):
            day = AS_OF.date() - timedelta(days=DAYS - d)
            conversions = float(rng.poisson(100.0 * 2.0 / 50.0))
            value = conversions * 50.0
            if adset == "b" and day == AS_OF.date() - timedelta(days=age_days):
                conversions, value = conversions + 1, value + whale
            rows.append(
                {"adset_id": adset, "campaign_id": f"c_{adset}", "date": day, "spend": 100.0,
                 "conversions": conversions, "purchase_value": value}
            )  # fmt: skip
    return pl.DataFrame(rows)


def _plan(daily: pl.DataFrame) -> dict[str, int]:
    config = marginal_pools(ceiling=100_000)
    entities = adsets({"a": 10_000, "b": 10_000})
    scores = neutral_scores({"a": "p", "b": "p"}, AS_OF)
    plan = plan_with_policies(
        entities, scores, pl.DataFrame(schema=contracts.ACTIONS), config, as_of=AS_OF,
        daily=daily,
    )  # fmt: skip
    return dict(plan.select("entity_id", "delta").iter_rows())


def test_a_single_purchase_is_not_credible_evidence_to_move_money():
    """Scenario: marginal_return pool, ad sets ``a`` and ``b`` identical (100.00/day, ROAS 2,
    about 4 purchases of 50.00 a day, 42 days). Without anything else nothing moves (checked).
    Then ``b`` gets one purchase worth 3,000.00 (a bulk order: one conversion).

    Expected: no move: the deviation rests on a single purchase, which issue 9's statistical
    gating ("act on a deviation only when it is credible given the conversion counts") cannot
    call credible.

    Observed: ``b`` +15.00, ``a`` −15.00 the next morning ("its own return is 1.4 sd off its
    pool's"), and again with the purchase 3 days old: the curve's variance assumes a purchase's
    value varies with a CV of 0.55 (``VALUE_CV``), so a 60× order counts as ordinary value,
    multiplied over the days the 10-day half-life keeps it. (A 2,000.00 order does not move:
    0.6 sd.)

    Fix: make the level robust to single large orders (winsorise a day's value per purchase at
    a multiple of the pool's AOV, or use the empirical value variance of the holder's own
    purchases in ``own_var``), so one purchase never clears ``gate_z``.
    """
    assert _plan(_history(0.0, 1)) == {"a": 0, "b": 0}
    assert _plan(_history(3_000.0, 1)) == {"a": 0, "b": 0}
