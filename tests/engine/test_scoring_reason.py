"""The score's ``reason`` text, byte for byte: number formatting at the edges, infinities and
missing values, the dominant component (first of equals), and the insufficient-data reason."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import AD_ENTITIES
from budget_pipeline.engine.scoring import fixed, score_entities
from budget_pipeline.engine.signals import BASELINES, SUM_COLUMNS, WINDOW_METRICS

AS_OF = datetime(2024, 5, 11)
H = 72  # hours in the window


@pytest.mark.parametrize(
    ("value", "two", "three"),
    [
        (0.0, "0.00", "0.000"),
        (-0.0, "0.00", "0.000"),
        (2.5, "2.50", "2.500"),
        (-2.5, "-2.50", "-2.500"),
        # a half at the last place goes to the even neighbour
        (0.125, "0.12", "0.125"),
        (0.375, "0.38", "0.375"),
        (0.025, "0.02", "0.025"),
        (0.0015, "0.00", "0.002"),
        (0.0025, "0.00", "0.002"),
        (-0.125, "-0.12", "-0.125"),
        # a negative that rounds to zero has no sign
        (-0.001, "0.00", "-0.001"),
        (-0.0051, "-0.01", "-0.005"),
        (123456.789, "123456.79", "123456.789"),
        (1e15, "1000000000000000.00", "1000000000000000.000"),
        # past a 38-digit decimal: "n/a" instead of failing every row's reason
        (1e36, "999999999999999977488098234560340295.68", "n/a"),
        (1e37, "n/a", "n/a"),
        (-1e37, "n/a", "n/a"),
        (1e40, "n/a", "n/a"),
        (float("nan"), "n/a", "n/a"),
        (None, "n/a", "n/a"),
        (float("inf"), "inf", "inf"),
    ],
)
def test_fixed_formats_edge_values(value, two, three):
    frame = pl.DataFrame({"x": [value]}, schema={"x": pl.Float64()})
    got = frame.select(a=fixed(pl.col("x")), b=fixed(pl.col("x"), 3)).row(0)
    assert got == (two, three)


def test_fixed_formats_a_column_with_an_absurd_value_in_it():
    """One value past the decimal's range must not fail (or blank) the others."""
    frame = pl.DataFrame({"x": [1.5, 5e36, None, 0.005, 1e300]})
    got = frame.select(fixed(pl.col("x")).alias("text"))["text"].to_list()
    assert got == ["1.50", "n/a", "n/a", "0.00", "n/a"]


def _config(weights: dict[str, float]) -> PoolsConfig:
    return PoolsConfig.model_validate(
        {
            "settings": {"lookback_hours": H, "evidence_conversions": 0},
            "pools": [
                {
                    "name": "p",
                    "tier": 1,
                    "floor": 100,
                    "ceiling": 10_000,
                    "weights": weights,
                    "members": {"campaign_names": ["C*"]},
                }
            ],
        }
    )


# every baseline: 30 active days, spend 3000, ROAS 2, CPA 10, CTR 2 %, frequency 2
BASE = {
    "spend": 3000.0,
    "impressions": 100_000,
    "reach": 50_000,
    "clicks": 2_000,
    "conversions": 300.0,
    "purchase_value": 6000.0,
}


def _frames(cases: dict[str, dict]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One ad set per case, each in its own campaign; a case gives the window's sums (each
    half gets half, unless ``early``/``late`` give a half's (spend, conversions)) and may
    override the baseline's (``base``) and its active days (``days``)."""
    windows, baselines = [], []
    for adset, case in cases.items():
        sums = {c: case[c] for c in SUM_COLUMNS}
        row = {"adset_id": adset, "campaign_id": f"C{adset}", "as_of": AS_OF, "window_hours": H}
        for half in ("_early", "_late"):
            spend, conv = case.get(half.strip("_"), (sums["spend"] / 2, sums["conversions"] / 2))
            for c, v in sums.items():
                row[f"{c}{half}"] = v // 2 if isinstance(v, int) else v / 2
            row[f"spend{half}"], row[f"conversions{half}"] = spend, conv
        windows.append({**row, **sums, "hours_with_spend": H})
        base = {**BASE, **case.get("base", {})}
        baselines.append(
            {
                "adset_id": adset,
                "campaign_id": f"C{adset}",
                "as_of": AS_OF,
                "lookback_hours": H,
                "baseline_days_active": case.get("days", 30),
                "baseline_active_day_offsets": [],
                **{f"baseline_{c}": v for c, v in base.items()},
            }
        )
    entities = pl.DataFrame(
        [
            {
                "entity_id": a,
                "entity_type": "adset",
                "campaign_id": f"C{a}",
                "name": a,
                "status": "ACTIVE",
                "budget_type": "daily",
                "currency": "EUR",
                "pool": "p",
                "locked": False,
            }
            for a in cases
        ],
        schema=AD_ENTITIES,
    )
    return (
        pl.DataFrame(windows, schema=WINDOW_METRICS),
        pl.DataFrame(baselines, schema=BASELINES),
        entities,
    )


def _window(**over) -> dict:
    """72 h on the baseline's rates (spend 300, ROAS 2, CPA 10, CTR 2 %, frequency 2)."""
    return {
        "spend": 300.0,
        "impressions": 10_000,
        "reach": 5_000,
        "clicks": 200,
        "conversions": 30.0,
        "purchase_value": 600.0,
        **over,
    }


def test_reason_text_byte_for_byte():
    weights = {"roas": 0.35, "cpa": 0.25, "frequency": 0.30, "engagement": 0.10}
    cases = {
        "flat": _window(),
        # spend, no purchase: CPA infinite, no velocity trend (0 → 0)
        "dry": _window(conversions=0.0, purchase_value=0.0),
        # no impressions: frequency and CTR unknown; purchases only in the late half
        "blind": _window(impressions=0, reach=0, clicks=0, early=(150.0, 0.0)),
        # a ROAS of 1e37, past a 38-digit decimal with its two places: "n/a", and every
        # other row still has its reason
        "absurd": _window(spend=6e-35, early=(3e-35, 15.0), late=(3e-35, 15.0)),
        # 6 days and 180 spend of baseline: both minimums fail
        "thin": _window(base={"spend": 180.0}, days=6),
    }
    windows, baselines, entities = _frames(cases)
    out = score_entities(windows, baselines, entities, _config(weights))
    reasons = dict(out.select("entity_id", "reason").iter_rows())
    assert reasons == {
        "flat": "roas 2.00 vs own baseline 2.00 (s=0.50); cpa 10.00 vs 10.00 (s=0.50); "
        "frequency 2.00 vs threshold 3.00 (s=0.50); ctr 2.00% vs 2.00% (s=0.50); "
        "velocity x1.00 (s=0.50); dominant: none (on baseline)",
        "dry": "roas 0.00 vs own baseline 2.00 (s=0.00); cpa inf vs 10.00 (s=0.00); "
        "frequency 2.00 vs threshold 3.00 (s=0.50); ctr 2.00% vs 2.00% (s=0.50); "
        "velocity xn/a (s=0.50); dominant: roas (-0.175)",
        "blind": "roas 2.00 vs own baseline 2.00 (s=0.50); cpa 10.00 vs 10.00 (s=0.50); "
        "frequency n/a vs threshold 3.00 (s=0.50); ctr n/a% vs 2.00% (s=0.50); "
        "velocity xinf (s=1.00); dominant: none (on baseline)",
        "absurd": "roas n/a vs own baseline 2.00 (s=1.00); cpa 0.00 vs 10.00 (s=1.00); "
        "frequency 2.00 vs threshold 3.00 (s=0.50); ctr 2.00% vs 2.00% (s=0.50); "
        "velocity x1.00 (s=0.50); dominant: roas (+0.175)",
        "thin": "insufficient_data: 6 active baseline days (< 7 required); "
        "baseline spend 180.00 (< 300.00 required)",
    }


def test_dominant_is_the_first_of_equal_pulls():
    """ROAS and CTR both doubled, at equal weights: the same pull, and ROAS (listed first)
    is named, on the positive side."""
    weights = {"roas": 0.3, "cpa": 0.3, "frequency": 0.1, "engagement": 0.3}
    up = _window(purchase_value=1200.0, clicks=400)
    down = _window(purchase_value=300.0, clicks=100)
    windows, baselines, entities = _frames({"up": up, "down": down})
    out = score_entities(windows, baselines, entities, _config(weights))
    reasons = dict(out.select("entity_id", "reason").iter_rows())
    s = dict(out.select("entity_id", "s_roas").iter_rows())
    assert s == {"up": 0.8, "down": 0.2}
    assert reasons == {
        "up": "roas 4.00 vs own baseline 2.00 (s=0.80); cpa 10.00 vs 10.00 (s=0.50); "
        "frequency 2.00 vs threshold 3.00 (s=0.50); ctr 4.00% vs 2.00% (s=0.80); "
        "velocity x1.00 (s=0.50); dominant: roas (+0.090)",
        "down": "roas 1.00 vs own baseline 2.00 (s=0.20); cpa 10.00 vs 10.00 (s=0.50); "
        "frequency 2.00 vs threshold 3.00 (s=0.50); ctr 1.00% vs 2.00% (s=0.20); "
        "velocity x1.00 (s=0.50); dominant: roas (-0.090)",
    }


@pytest.mark.parametrize(
    ("spend", "minimum", "text"),
    [
        # rounded, 299.995 read "300.00 (< 300.00 required)"
        (299.995, 300.0, "baseline spend 299.99 (< 300.00 required)"),
        (299.999999, 300.0, "baseline spend 299.99 (< 300.00 required)"),
        (180.0, 300.0, "baseline spend 180.00 (< 300.00 required)"),
        # short of the minimum by more than the rounding: rounded as every other number
        (293.456, 300.0, "baseline spend 293.46 (< 300.00 required)"),
        (0.0, 300.0, "baseline spend 0.00 (< 300.00 required)"),
        # a minimum with more places than two shows them
        (300.001, 300.004, "baseline spend 300.00 (< 300.004 required)"),
    ],
)
def test_a_baseline_spend_short_of_the_minimum_never_reads_as_much(spend, minimum, text):
    config = _config({"roas": 0.35, "cpa": 0.25, "frequency": 0.30, "engagement": 0.10})
    config = config.model_copy(
        update={"settings": config.settings.model_copy(update={"min_baseline_spend": minimum})}
    )
    windows, baselines, entities = _frames({"short": _window(base={"spend": spend})})
    reason = score_entities(windows, baselines, entities, config)["reason"].item()
    assert reason == f"insufficient_data: {text}"
