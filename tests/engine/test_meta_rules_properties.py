"""Property tests: the money invariants of Meta rules hold for any ad sets and any rule shape.

Conservation is checked here from first principles (not through ``bucket_conservation``):
per bucket — budget type, and campaign unless ``is_cross_campaign`` — the available amount
(daily budget, or lifetime leftover) after the plan, counting a paused ad set as 0 because its
budget was donated, equals the available amount before, to the minor unit.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_pipeline.engine.meta_rules import apply_rule, bucket_conservation, parse_rule

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def adset_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=1, max_value=9))
    rows = []
    for i in range(n):
        lifetime = draw(st.booleans())
        budget = draw(st.integers(min_value=0, max_value=2_000_000))
        spend = draw(st.integers(min_value=0, max_value=budget)) if lifetime else None
        rows.append(
            {
                "adset_id": f"as{i}",
                "campaign_id": draw(st.sampled_from(["c1", "c2", "c3"])),
                "daily_budget": None if lifetime else budget,
                "lifetime_budget": budget if lifetime else None,
                "lifetime_spend": spend,
                "m": draw(st.integers(min_value=0, max_value=5)),
                "tf": draw(
                    st.one_of(
                        st.none(),
                        st.sampled_from([0.0, 0.01, 1.0, 2.5, 1e6]),
                        st.floats(min_value=0, max_value=1000, allow_nan=False),
                    )
                ),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "adset_id": pl.Utf8,
            "campaign_id": pl.Utf8,
            "daily_budget": pl.Int64,
            "lifetime_budget": pl.Int64,
            "lifetime_spend": pl.Int64,
            "m": pl.Int64,
            "tf": pl.Float64,
        },
    )


@st.composite
def rebalance_rules(draw: st.DrawFn) -> Any:
    rtype = draw(
        st.sampled_from(
            [
                "EVEN",
                "PROPORTIONAL",
                "NO_PAUSE_PROPORTIONAL",
                "MATCHED_ONLY_PROPORTIONAL",
                "INVERSE_PROPORTIONAL",
            ]
        )
    )
    spec: dict[str, Any] = {"type": rtype, "is_cross_campaign": draw(st.booleans())}
    if rtype != "EVEN" or draw(st.booleans()):
        spec["target_field"] = "tf"
        if rtype != "INVERSE_PROPORTIONAL":
            spec["is_inverse"] = draw(st.booleans())
        count = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=10)))
        if count is not None:
            spec["target_count"] = count
    op, value = draw(
        st.sampled_from(
            [
                ("GREATER_THAN", 2),
                ("LESS_THAN", 3),
                ("IN", [0, 2, 4]),
                ("IN_RANGE", [1, 3]),
                ("NOT_EQUAL", 1),
            ]
        )
    )
    return parse_rule(
        {
            "evaluation_spec": {
                "evaluation_type": "SCHEDULE",
                "filters": [{"field": "m", "operator": op, "value": value}],
            },
            "execution_spec": {
                "execution_type": "REBALANCE_BUDGET",
                "execution_options": [
                    {"field": "rebalance_spec", "value": spec, "operator": "EQUAL"}
                ],
            },
        }
    )


def _joined(frame: pl.DataFrame, plan: pl.DataFrame) -> pl.DataFrame:
    spend = frame.select("adset_id", pl.col("lifetime_spend").fill_null(0).alias("spend"))
    return plan.join(spend, on="adset_id").with_columns(
        (pl.col("old_budget") - pl.col("spend")).alias("before"),
        pl.when(pl.col("paused"))
        .then(0)
        .otherwise(pl.col("new_budget") - pl.col("spend"))
        .alias("after"),
    )


@SETTINGS
@given(frame=adset_frames(), rule=rebalance_rules())
def test_money_is_conserved_per_bucket(frame: pl.DataFrame, rule: Any) -> None:
    plan = apply_rule(rule, frame)
    keys = ["budget_type"] if rule.rebalance.is_cross_campaign else ["campaign_id", "budget_type"]
    sums = _joined(frame, plan).group_by(keys).agg(pl.col("before").sum(), pl.col("after").sum())
    assert sums["before"].to_list() == sums["after"].to_list()
    helper = bucket_conservation(rule, frame, plan)
    assert helper["before"].to_list() == helper["after"].to_list()


@SETTINGS
@given(frame=adset_frames(), rule=rebalance_rules())
def test_per_campaign_totals_hold_unless_cross_campaign(frame: pl.DataFrame, rule: Any) -> None:
    if rule.rebalance.is_cross_campaign:
        return
    plan = apply_rule(rule, frame)
    sums = _joined(frame, plan).group_by("campaign_id").agg(pl.col("before", "after").sum())
    assert sums["before"].to_list() == sums["after"].to_list()


@SETTINGS
@given(frame=adset_frames(), rule=rebalance_rules())
def test_budgets_never_go_negative_nor_below_spend(frame: pl.DataFrame, rule: Any) -> None:
    plan = _joined(frame, apply_rule(rule, frame))
    assert (plan["new_budget"] >= 0).all()
    assert (plan["new_budget"] >= plan["spend"]).all()
    assert plan.height == frame.height
    assert plan["adset_id"].to_list() == frame["adset_id"].to_list()


@SETTINGS
@given(frame=adset_frames(), rule=rebalance_rules())
def test_who_may_gain_lose_or_pause(frame: pl.DataFrame, rule: Any) -> None:
    plan = apply_rule(rule, frame)
    rtype = rule.rebalance.type
    paused, matched = plan["paused"], plan["matched"]
    delta = plan["new_budget"] - plan["old_budget"]
    # a paused ad set was matched and keeps its stored budget
    assert (~paused | matched).all()
    assert (delta.filter(paused) == 0).all()
    unmatched = plan.filter(~pl.col("matched"))
    unmatched_delta = unmatched["new_budget"] - unmatched["old_budget"]
    if rtype == "NO_PAUSE_PROPORTIONAL":
        assert not paused.any()
        assert (unmatched_delta >= 0).all()  # recipients never lose budget
    elif rtype == "MATCHED_ONLY_PROPORTIONAL":
        assert not paused.any()
        assert (unmatched_delta == 0).all()
    else:  # EVEN, PROPORTIONAL: only matched donate, only unmatched receive
        assert (unmatched_delta >= 0).all()
        assert (delta.filter(matched & ~paused) == 0).all()


@st.composite
def change_rules(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        unit = draw(st.sampled_from(["ACCOUNT_CURRENCY", "PERCENTAGE"]))
        amount = (
            draw(st.integers(min_value=-3_000_000, max_value=3_000_000))
            if unit == "ACCOUNT_CURRENCY"
            else draw(st.floats(min_value=-99, max_value=500, allow_nan=False))
        )
        spec: dict[str, Any] = {"amount": amount, "unit": unit}
        if draw(st.booleans()):
            spec["limit"] = draw(st.integers(min_value=0, max_value=3_000_000))
    else:
        spec = {"amount": draw(st.sampled_from([0.5, 2.0, 10.0])), "target_field": "tf"}
        if draw(st.booleans()):
            low = draw(st.integers(min_value=0, max_value=1_000_000))
            spec["limit"] = [low, low + draw(st.integers(min_value=0, max_value=1_000_000))]
    return parse_rule(
        {
            "evaluation_spec": {
                "evaluation_type": "SCHEDULE",
                "filters": [{"field": "m", "operator": "GREATER_THAN", "value": 1}],
            },
            "execution_spec": {
                "execution_type": "CHANGE_BUDGET",
                "execution_options": [{"field": "change_spec", "value": spec, "operator": "EQUAL"}],
            },
        }
    )


@SETTINGS
@given(frame=adset_frames(), rule=change_rules())
def test_change_budget_stays_within_bounds(frame: pl.DataFrame, rule: Any) -> None:
    plan = _joined(frame, apply_rule(rule, frame))
    assert (plan["new_budget"] >= plan["spend"]).all()
    assert not plan["paused"].any()
    unmatched = plan.filter(~pl.col("matched"))
    assert (unmatched["new_budget"] == unmatched["old_budget"]).all()
    limit = rule.change.limit
    up = plan.filter(pl.col("new_budget") > pl.col("old_budget"))
    down = plan.filter(pl.col("new_budget") < pl.col("old_budget"))
    if isinstance(limit, tuple):
        assert (up["new_budget"] <= limit[1]).all()
        assert (down["new_budget"] >= limit[0]).all()
    elif limit is not None:
        if rule.change.amount > 0:
            assert (up["new_budget"] <= limit).all()
        else:
            assert (down["new_budget"] >= limit).all()
