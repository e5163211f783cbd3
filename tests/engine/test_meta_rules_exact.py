"""Meta rules plan in exact integer money: 17–18-digit budgets split to the minor unit.

Every sum here is taken in Python integers (a polars Int64 sum wraps around silently), and
each share is compared with its exact fraction, not only with the total.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from budget_pipeline.engine.meta_rules import (
    AdsetFrameError,
    RuleError,
    apply_rule,
    parse_rule,
)

INT64_MAX = 2**63 - 1
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMA = {
    "adset_id": pl.Utf8,
    "campaign_id": pl.Utf8,
    "daily_budget": pl.Int64,
    "lifetime_budget": pl.Int64,
    "lifetime_spend": pl.Int64,
    "m": pl.Int64,
    "tf": pl.Float64,
}


def rule(execution_type: str, option: str, spec: dict[str, Any], m_above: int = 1) -> Any:
    return parse_rule(
        {
            "evaluation_spec": {
                "evaluation_type": "SCHEDULE",
                "filters": [{"field": "m", "operator": "GREATER_THAN", "value": m_above}],
            },
            "execution_spec": {
                "execution_type": execution_type,
                "execution_options": [{"field": option, "value": spec, "operator": "EQUAL"}],
            },
        }
    )


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    base = {"campaign_id": "c1", "lifetime_budget": None, "lifetime_spend": None, "tf": 1.0}
    return pl.DataFrame([base | r for r in rows], schema=SCHEMA)


def test_even_split_of_18_digit_budgets_is_exact_to_the_minor_unit():
    # The float split gave each recipient 333333333333333313 and lost 60 minor units.
    ads = frame(
        [
            {"adset_id": "1", "daily_budget": 999_999_999_999_999_999, "m": 2},
            {"adset_id": "2", "daily_budget": 3, "m": 0},
            {"adset_id": "3", "daily_budget": 5, "m": 0},
            {"adset_id": "4", "daily_budget": 7, "m": 0},
        ]
    )
    plan = apply_rule(rule("REBALANCE_BUDGET", "rebalance_spec", {"type": "EVEN"}), ads)
    assert plan["new_budget"].to_list() == [
        999_999_999_999_999_999,  # paused, stored budget kept
        333_333_333_333_333_336,
        333_333_333_333_333_338,
        333_333_333_333_333_340,
    ]
    assert plan["reason"][1] == "recipient: +333333333333333333 (EVEN share of 999999999999999999)"


@pytest.mark.parametrize(
    ("budget", "target", "cost", "expected"),
    [
        (3, 11, 6.0, 6),  # 3 × 11/6 = 5.5; 28-digit decimals made it 5.4999… and gave 5
        (300_000_000_000_000_001, 7, 26.0, 80_769_230_769_230_770),  # …769.5, rounded down too
    ],
)
def test_change_budget_rounds_an_exact_half_away_from_zero(budget, target, cost, expected):
    ads = frame([{"adset_id": "1", "daily_budget": budget, "m": 2, "tf": cost}])
    ads = ads.rename({"tf": "cost_per_purchase"})
    spec = {"amount": target, "target_field": "cost_per_purchase"}
    assert apply_rule(rule("CHANGE_BUDGET", "change_spec", spec), ads)["new_budget"][0] == expected


def test_budgets_whose_total_overflows_int64_are_refused_by_name():
    ads = frame(
        [
            {"adset_id": "1", "daily_budget": 900_000_000_000_000_000 * 6, "m": 2},
            {"adset_id": "2", "daily_budget": 900_000_000_000_000_000 * 5, "m": 0},
        ]
    )
    with pytest.raises(AdsetFrameError, match="budgets add up to 9900000000000000000"):
        apply_rule(rule("REBALANCE_BUDGET", "rebalance_spec", {"type": "EVEN"}), ads)


def test_a_change_beyond_int64_is_a_rule_error_naming_the_ad_set():
    ads = frame([{"adset_id": "77", "daily_budget": 9 * 10**18, "m": 2}])
    spec = {"amount": 50, "unit": "PERCENTAGE"}
    with pytest.raises(RuleError, match=r"ad set '77'.*13500000000000000000"):
        apply_rule(rule("CHANGE_BUDGET", "change_spec", spec), ads)


# ----------------------------------------------------------------------------- properties


@st.composite
def huge_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=1, max_value=8))
    cap = INT64_MAX // n  # the frame's budgets must add up within int64
    rows = []
    for i in range(n):
        lifetime = draw(st.booleans())
        budget = draw(
            st.one_of(st.integers(10**16, cap), st.integers(0, cap), st.integers(0, 1000))
        )
        rows.append(
            {
                "adset_id": f"as{i}",
                "campaign_id": draw(st.sampled_from(["c1", "c2"])),
                "daily_budget": None if lifetime else budget,
                "lifetime_budget": budget if lifetime else None,
                "lifetime_spend": draw(st.integers(0, budget)) if lifetime else None,
                "m": draw(st.integers(0, 3)),
                "tf": draw(
                    st.one_of(
                        st.none(),
                        st.sampled_from([0.0, 0.1, 1.0, 3.0, 7.25, 1e-300, 1e300]),
                        st.floats(min_value=0, max_value=1e6, allow_nan=False),
                    )
                ),
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA)


@st.composite
def rebalance_specs(draw: st.DrawFn) -> dict[str, Any]:
    rtype = draw(
        st.sampled_from(
            ["EVEN", "PROPORTIONAL", "NO_PAUSE_PROPORTIONAL", "MATCHED_ONLY_PROPORTIONAL"]
        )
    )
    spec: dict[str, Any] = {"type": rtype, "is_cross_campaign": draw(st.booleans())}
    if rtype != "EVEN":
        spec["target_field"] = "tf"
        spec["is_inverse"] = draw(st.booleans())
        if draw(st.booleans()):
            spec["target_count"] = draw(st.integers(1, 4))
    return spec


def _engine_weights(values: list[float | None], inverse: bool) -> list[float]:
    """The documented weights: the value (float64), or smallest/value under is_inverse."""
    v = np.array([0.0 if x is None else x for x in values], dtype=np.float64)
    positive = v > 0
    if not positive.any():
        return [0.0] * len(values)
    if inverse:
        return np.where(positive, v[positive].min() / np.where(positive, v, 1.0), 0.0).tolist()
    return v.tolist()


@SETTINGS
@given(ads=huge_frames(), spec=rebalance_specs())
def test_every_share_is_within_one_unit_of_its_exact_fraction_and_buckets_conserve(ads, spec):
    plan = apply_rule(rule("REBALANCE_BUDGET", "rebalance_spec", spec), ads)
    # Weights are taken over the whole frame (is_inverse divides by the frame's smallest value).
    weighted = ads.with_columns(
        pl.Series("w", _engine_weights(ads["tf"].to_list(), spec.get("is_inverse", False)))
    )
    rows = weighted.join(plan.select("adset_id", "new_budget", "paused", "matched"), on="adset_id")
    keys = ["budget_type"] if spec["is_cross_campaign"] else ["campaign_id", "budget_type"]
    rows = rows.with_columns(
        pl.when(pl.col("lifetime_budget").is_null())
        .then(pl.lit("daily"))
        .otherwise(pl.lit("lifetime"))
        .alias("budget_type")
    )
    for bucket in rows.partition_by(keys):
        r = bucket.to_dicts()
        spend = [x["lifetime_spend"] or 0 for x in r]
        before = [(x["daily_budget"] if x["daily_budget"] is not None else x["lifetime_budget"])
                  - s for x, s in zip(r, spend, strict=True)]  # fmt: skip
        after = [0 if x["paused"] else x["new_budget"] - s for x, s in zip(r, spend, strict=True)]
        assert sum(after) == sum(before)  # conservation, in Python integers
        matched = [x["matched"] for x in r]
        if not any(matched):
            continue
        weights = [1.0 if spec["type"] == "EVEN" else x["w"] for x in r]
        rank = sorted(range(len(r)), key=lambda i: (-weights[i], r[i]["adset_id"]))
        if spec["type"] in ("EVEN", "PROPORTIONAL"):
            candidates = [i for i in rank if not matched[i]]
            gains = {i: after[i] - before[i] for i in candidates}
        elif spec["type"] == "NO_PAUSE_PROPORTIONAL":
            candidates = rank
            gains = {i: after[i] - (0 if matched[i] else before[i]) for i in rank}
        else:
            candidates = [i for i in rank if matched[i]]
            gains = {i: after[i] for i in candidates}
        if not candidates or (spec["type"] in ("EVEN", "PROPORTIONAL") and all(matched)):
            continue
        takers = candidates[: spec.get("target_count", len(candidates))]
        donated = sum(before[i] for i in range(len(r)) if matched[i])
        total_weight = sum(Fraction(weights[i]) for i in takers)
        for i in takers:
            w = Fraction(weights[i]) if total_weight else Fraction(1)
            exact = donated * w / (total_weight or len(takers))
            assert exact - 1 < gains[i] < exact + 1, (i, gains[i], float(exact))
        for i in set(candidates) - set(takers):
            assert gains[i] == 0


@SETTINGS
@given(
    ads=huge_frames(),
    pct=st.one_of(
        st.sampled_from([-50, 0.5, 12.345678901234567, 33.3333]),
        st.floats(-99, 100, allow_nan=False),
    ),
)
# found by hypothesis: +0.5 % takes this budget one past the 64-bit range, and the test skipped
# the row while the rule (rightly) refuses the whole change
@example(
    ads=frame([{"adset_id": "as0", "daily_budget": 9_177_484_613_785_846_575, "m": 2}]), pct=0.5
)
def test_a_percentage_change_is_the_exact_rounded_fraction(ads, pct):
    spec = {"amount": pct, "unit": "PERCENTAGE"}
    expected = []
    for x in ads.to_dicts():
        old = x["daily_budget"] if x["daily_budget"] is not None else x["lifetime_budget"]
        if x["m"] <= 1:
            expected.append(old)
            continue
        exact = old * Fraction(str(pct)) / 100  # the rule's amount is read as its decimal text
        delta = int(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
        expected.append(max(old + delta, x["lifetime_spend"] or 0))
    too_big = [
        x["adset_id"] for x, e in zip(ads.to_dicts(), expected, strict=True) if e > INT64_MAX
    ]
    if too_big:  # the whole rule is refused, naming the first ad set that cannot hold its budget
        with pytest.raises(RuleError, match=f"ad set {too_big[0]!r}"):
            apply_rule(rule("CHANGE_BUDGET", "change_spec", spec), ads)
        return
    plan = apply_rule(rule("CHANGE_BUDGET", "change_spec", spec), ads)
    assert plan["new_budget"].to_list() == expected


# ------------------------------------------------------------------ filters on integer columns


def test_a_filter_on_an_18_digit_budget_compares_exactly():
    # As float64 both budgets are 9007199254740992.0: the filter matched neither or both.
    ads = frame(
        [
            {"adset_id": "1", "daily_budget": 2**53, "m": 2},
            {"adset_id": "2", "daily_budget": 2**53 + 1, "m": 2},
            {"adset_id": "3", "daily_budget": None, "lifetime_budget": 5, "lifetime_spend": 0,
             "m": 2},
        ]
    )  # fmt: skip

    def matched(op: str, value: Any) -> list[bool]:
        r = parse_rule(
            {
                "evaluation_spec": {
                    "evaluation_type": "SCHEDULE",
                    "filters": [{"field": "daily_budget", "operator": op, "value": value}],
                },
                "execution_spec": {
                    "execution_type": "REBALANCE_BUDGET",
                    "execution_options": [
                        {"field": "rebalance_spec", "value": {"type": "EVEN"}, "operator": "EQUAL"}
                    ],
                },
            }
        )
        return apply_rule(r, ads)["matched"].to_list()

    assert matched("GREATER_THAN", 2**53) == [False, True, False]
    assert matched("EQUAL", 2**53 + 1) == [False, True, False]
    assert matched("NOT_IN", [2**53]) == [False, True, False]  # a null never passes
    assert matched("IN", [2**53 + 1, "7"]) == [False, True, False]
    assert matched("IN_RANGE", [2**53 + 1, 10**30]) == [False, True, False]
    assert matched("LESS_THAN", "9007199254740992.5") == [True, False, False]
    assert matched("NOT_IN_RANGE", [0, 2**53]) == [False, True, False]
