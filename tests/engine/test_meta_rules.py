"""Meta ad rules: parsing, filters and worked numeric cases derived by hand from SPEC §6."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import budget_pipeline
from budget_pipeline.engine.meta_rules import (
    PLAN_SCHEMA,
    AdsetFrameError,
    RuleError,
    apply_rule,
    bucket_conservation,
    load_rule,
    match_filters,
    parse_rule,
)

EXAMPLES = Path(budget_pipeline.__file__).parent / "examples" / "rules"


# ------------------------------------------------------------------------------ helpers


def adsets(*rows: dict[str, Any]) -> pl.DataFrame:
    """Ad sets with defaults: campaign c1, no lifetime budget unless given."""
    filled = []
    for r in rows:
        row = {
            "campaign_id": "c1",
            "daily_budget": None,
            "lifetime_budget": None,
            "lifetime_spend": None,
            **r,
        }
        filled.append(row)
    frame = pl.DataFrame(filled, infer_schema_length=None)
    return frame.with_columns(
        pl.col("daily_budget").cast(pl.Int64),
        pl.col("lifetime_budget").cast(pl.Int64),
        pl.col("lifetime_spend").cast(pl.Int64),
    )


def rule_obj(
    execution_type: str = "REBALANCE_BUDGET",
    filters: list[dict[str, Any]] | None = None,
    options: list[dict[str, Any]] | None = None,
    preset: str | None = "LIFETIME",
) -> dict[str, Any]:
    all_filters = [{"field": "entity_type", "value": "ADSET", "operator": "EQUAL"}]
    if preset:
        all_filters.append({"field": "time_preset", "value": preset, "operator": "EQUAL"})
    all_filters += filters or []
    return {
        "name": "test rule",
        "evaluation_spec": {"evaluation_type": "SCHEDULE", "filters": all_filters},
        "execution_spec": {"execution_type": execution_type, "execution_options": options or []},
    }


def rebalance(filters: list[dict[str, Any]], **spec: Any) -> Any:
    opt = {"field": "rebalance_spec", "value": spec, "operator": "EQUAL"}
    return parse_rule(rule_obj("REBALANCE_BUDGET", filters, [opt]))


def change(filters: list[dict[str, Any]], spec: dict[str, Any], frequency: int | None = None):
    options = [{"field": "change_spec", "value": spec, "operator": "EQUAL"}]
    if frequency is not None:
        options.append({"field": "action_frequency", "value": frequency, "operator": "EQUAL"})
    return parse_rule(rule_obj("CHANGE_BUDGET", filters, options))


def flagged(value: int = 1) -> list[dict[str, Any]]:
    """Filter: the ad sets whose ``flag`` column equals ``value``."""
    return [{"field": "flag", "value": value, "operator": "EQUAL"}]


def new_budgets(plan: pl.DataFrame) -> dict[str, int]:
    return dict(zip(plan["adset_id"], plan["new_budget"], strict=True))


def assert_conserved(rule: Any, frame: pl.DataFrame, plan: pl.DataFrame) -> None:
    totals = bucket_conservation(rule, frame, plan)
    assert totals["before"].to_list() == totals["after"].to_list(), totals


# ------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_example_rule_parses(path: Path) -> None:
    rule = load_rule(path)
    assert rule.execution_type in ("REBALANCE_BUDGET", "CHANGE_BUDGET")


def test_examples_cover_every_type() -> None:
    declared = set()
    for path in EXAMPLES.glob("*.json"):
        rule = load_rule(path)
        declared.add(rule.rebalance.declared_type if rule.rebalance else rule.execution_type)
    assert declared >= {
        "EVEN",
        "PROPORTIONAL",
        "NO_PAUSE_PROPORTIONAL",
        "MATCHED_ONLY_PROPORTIONAL",
        "INVERSE_PROPORTIONAL",
        "CHANGE_BUDGET",
    }


def test_inverse_proportional_is_proportional_with_is_inverse() -> None:
    rule = load_rule(EXAMPLES / "inverse_proportional_meta_example.json")
    assert rule.rebalance is not None
    assert rule.rebalance.type == "PROPORTIONAL"
    assert rule.rebalance.is_inverse is True
    assert rule.rebalance.target_count == 10
    assert rule.rebalance.is_cross_campaign is True
    with pytest.raises(RuleError, match="is_inverse: false contradicts"):
        rebalance([], type="INVERSE_PROPORTIONAL", target_field="cpa", is_inverse=False)


def test_specs_may_be_json_strings_as_sent_with_curl() -> None:
    obj = rule_obj(
        options=[{"field": "rebalance_spec", "value": {"type": "EVEN"}, "operator": "EQUAL"}]
    )
    obj["evaluation_spec"] = json.dumps(obj["evaluation_spec"])
    obj["execution_spec"] = json.dumps(obj["execution_spec"])
    assert parse_rule(obj).rebalance.type == "EVEN"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "spent", "value": 1, "operator": "BETWEEN"}
            ),
            r"evaluation_spec\.filters\[2\]\.operator: unsupported operator 'BETWEEN'",
        ),
        (lambda o: o.update(priority=1), r"priority: unsupported field"),
        (
            lambda o: o["evaluation_spec"].update(evaluation_type="TRIGGER"),
            r"evaluation_type: 'TRIGGER' is not supported",
        ),
        (
            lambda o: o["evaluation_spec"].update(trigger={"type": "STATS_CHANGE"}),
            r"evaluation_spec\.trigger: unsupported field",
        ),
        (
            lambda o: o["execution_spec"].update(execution_type="PAUSE"),
            r"execution_type: 'PAUSE' is not supported",
        ),
        (
            lambda o: o["execution_spec"]["execution_options"][0]["value"].update(foo=1),
            r"execution_options\[0\]\.value\.foo: unsupported field",
        ),
        (
            lambda o: o["execution_spec"]["execution_options"][0]["value"].update(type="RANDOM"),
            r"execution_options\[0\]\.value\.type: unsupported rebalance type 'RANDOM'",
        ),
        (
            lambda o: o["execution_spec"]["execution_options"].append(
                {"field": "action_frequency", "value": 60, "operator": "EQUAL"}
            ),
            r"execution_options\[1\]\.field: option 'action_frequency' is not supported "
            r"\(it does not apply to REBALANCE_BUDGET\)",
        ),
        (
            lambda o: o["execution_spec"]["execution_options"].append(
                {"field": "execution_count_limit", "value": 5, "operator": "EQUAL"}
            ),
            r"option 'execution_count_limit' is not supported",
        ),
        (
            lambda o: o["execution_spec"]["execution_options"][0].update(operator="IN"),
            r"execution_options\[0\]\.operator: execution options support only EQUAL",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].__setitem__(
                0, {"field": "entity_type", "value": "CAMPAIGN", "operator": "EQUAL"}
            ),
            r"filters\[0\]: entity_type filter excludes ADSET",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].__setitem__(
                1, {"field": "time_preset", "value": "LAST_9_DAYS", "operator": "EQUAL"}
            ),
            r"filters\[1\]\.value: unsupported time preset 'LAST_9_DAYS'",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "LAST_7_DAYS:spent", "value": 1, "operator": "GREATER_THAN"}
            ),
            r"not Meta's syntax.*'last_7_days_spent'",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "campaign.spent", "value": 1, "operator": "GREATER_THAN"}
            ),
            r"object-level prefix 'campaign\.'",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "28d_view_1d_click:lifetime_results", "value": 1, "operator": "LESS_THAN"}
            ),
            r"attribution-window prefix",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "aggregate(reach)", "value": 1, "operator": "GREATER_THAN"}
            ),
            r"aggregated field 'aggregate\(reach\)' is not supported",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "yesterday_daily_budget", "value": 1, "operator": "GREATER_THAN"}
            ),
            r"metadata field 'daily_budget' cannot take a time-preset prefix",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "spent", "value": [5, 1], "operator": "IN_RANGE"}
            ),
            r"filters\[2\]\.value: IN_RANGE range \[5, 1\] has low above high",
        ),
        (
            lambda o: o["evaluation_spec"]["filters"].append(
                {"field": "spent", "value": "a lot", "operator": "GREATER_THAN"}
            ),
            r"filters\[2\]\.value: GREATER_THAN needs a number",
        ),
    ],
)
def test_unsupported_things_are_rejected_by_name_and_path(mutate: Any, message: str) -> None:
    obj = rule_obj(
        options=[{"field": "rebalance_spec", "value": {"type": "EVEN"}, "operator": "EQUAL"}]
    )
    mutate(obj)
    with pytest.raises(RuleError, match=message):
        parse_rule(obj)


def test_target_field_is_required_except_for_even() -> None:
    with pytest.raises(RuleError, match=r"target_field: required for rebalance type PROPORTIONAL"):
        rebalance([], type="PROPORTIONAL")
    with pytest.raises(RuleError, match=r"target_field: required when target_count is set"):
        rebalance([], type="EVEN", target_count=3)
    with pytest.raises(RuleError, match=r"target_count: expected a positive integer"):
        rebalance([], type="EVEN", target_field="cpa", target_count=0)


def test_change_spec_validation() -> None:
    with pytest.raises(RuleError, match=r"amount: 12\.5 is not an integer number of minor units"):
        change([], {"amount": 12.5, "unit": "ACCOUNT_CURRENCY"})
    with pytest.raises(RuleError, match=r"unit: expected one of ACCOUNT_CURRENCY, PERCENTAGE"):
        change([], {"amount": 10, "unit": "ABSOLUTE"})
    with pytest.raises(RuleError, match=r"limit: expected a non-negative integer of minor units"):
        change([], {"amount": 10, "unit": "PERCENTAGE", "limit": [1, 2]})
    with pytest.raises(RuleError, match=r"limit: with target_field, limit is a \[min, max\]"):
        change([], {"amount": 5.0, "target_field": "cost_per_purchase_fb", "limit": 100})
    with pytest.raises(RuleError, match=r"unit: not used with target_field"):
        change([], {"amount": 5.0, "unit": "PERCENTAGE", "target_field": "cpa"})
    with pytest.raises(RuleError, match=r"action_frequency must be a positive integer"):
        change([], {"amount": 10, "unit": "PERCENTAGE"}, frequency=-5)


def test_load_rule_reports_bad_json_with_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "rule.json"
    bad.write_text('{"name": "x",}')
    with pytest.raises(RuleError, match=r"rule\.json: not valid JSON \(line 1"):
        load_rule(bad)


# ------------------------------------------------------------------------------- filters

FILTER_FRAME = adsets(
    {"adset_id": "1", "daily_budget": 100, "name": "prospecting broad", "spent": 10.0},
    {"adset_id": "2", "daily_budget": 100, "name": "retargeting", "spent": 20.0},
    {"adset_id": "3", "daily_budget": 100, "name": "Prospecting LAL", "spent": 30.0},
    {"adset_id": "4", "daily_budget": 100, "name": "testing", "spent": None},
)


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("spent", "GREATER_THAN", 15, [False, True, True, False]),
        ("spent", "LESS_THAN", 15, [True, False, False, False]),
        ("spent", "EQUAL", 20, [False, True, False, False]),
        ("spent", "NOT_EQUAL", 20, [True, False, True, False]),
        ("spent", "IN_RANGE", [10, 20], [True, True, False, False]),
        ("spent", "NOT_IN_RANGE", [10, 20], [False, False, True, False]),
        ("spent", "IN", [10, 30], [True, False, True, False]),
        ("spent", "NOT_IN", [10, 30], [False, True, False, False]),
        ("name", "CONTAIN", "prospecting", [True, False, False, False]),
        ("name", "NOT_CONTAIN", "prospecting", [False, True, True, True]),
        ("name", "EQUAL", "testing", [False, False, False, True]),
        ("id", "IN", [1, "3"], [True, False, True, False]),
        ("adset.id", "NOT_IN", ["1"], [False, True, True, True]),
        ("campaign.id", "EQUAL", "c1", [True, True, True, True]),
        ("spent", "ANY", [20, 30], [False, True, True, False]),
        ("spent", "NONE", [20, 30], [True, False, False, False]),
        ("spent", "ALL", [20], [False, True, False, False]),
        ("daily_budget", "EQUAL", 100, [True, True, True, True]),
    ],
)
def test_each_operator(field: str, operator: str, value: Any, expected: list[bool]) -> None:
    rule = rebalance([{"field": field, "value": value, "operator": operator}], type="EVEN")
    assert match_filters(rule, FILTER_FRAME).to_list() == expected


def test_any_all_none_on_a_list_valued_field() -> None:
    frame = FILTER_FRAME.with_columns(
        pl.Series("labels", [["a", "b"], ["b"], [], None], dtype=pl.List(pl.Utf8))
    )

    def run(op: str, value: list[str]) -> list[bool]:
        rule = rebalance([{"field": "labels", "value": value, "operator": op}], type="EVEN")
        return match_filters(rule, frame).to_list()

    assert run("ANY", ["a", "x"]) == [True, False, False, False]
    assert run("ALL", ["a", "b"]) == [True, False, False, False]
    assert run("NONE", ["a"]) == [False, True, True, False]


def test_filters_are_anded_and_missing_values_never_pass() -> None:
    rule = rebalance(
        [
            {"field": "spent", "value": 5, "operator": "GREATER_THAN"},
            {"field": "name", "value": "retargeting", "operator": "NOT_EQUAL"},
        ],
        type="EVEN",
    )
    # row 4 has no spend: it fails GREATER_THAN although NOT_EQUAL alone would pass it.
    assert match_filters(rule, FILTER_FRAME).to_list() == [True, False, True, False]


def test_time_preset_prefix_reads_the_per_preset_column() -> None:
    frame = FILTER_FRAME.with_columns(
        pl.Series("last_7d__spent", [50.0, 0.0, 50.0, 0.0]),
        pl.Series("lifetime__spent", [1.0, 1.0, 99.0, 99.0]),
    )
    prefixed = [{"field": "last_7d_spent", "value": 10, "operator": "GREATER_THAN"}]
    assert match_filters(rebalance(prefixed, type="EVEN"), frame).to_list() == [
        True,
        False,
        True,
        False,
    ]
    object_level = [{"field": "adset.last_7d_spent", "value": 10, "operator": "GREATER_THAN"}]
    assert match_filters(rebalance(object_level, type="EVEN"), frame).to_list() == [
        True,
        False,
        True,
        False,
    ]
    # Unprefixed → the rule's time_preset (LIFETIME) column wins over the plain column.
    plain = [{"field": "spent", "value": 50, "operator": "GREATER_THAN"}]
    assert match_filters(rebalance(plain, type="EVEN"), frame).to_list() == [
        False,
        False,
        True,
        True,
    ]


def test_plain_metric_column_serves_only_the_rules_own_preset() -> None:
    # The frame has just `spent`; the rule's preset is LIFETIME.
    ok = [{"field": "lifetime_spent", "value": 15, "operator": "GREATER_THAN"}]
    assert match_filters(rebalance(ok, type="EVEN"), FILTER_FRAME).to_list() == [
        False,
        True,
        True,
        False,
    ]
    other = [{"field": "yesterday_spent", "value": 15, "operator": "GREATER_THAN"}]
    with pytest.raises(RuleError, match=r"field 'yesterday_spent'.*'yesterday__spent'"):
        match_filters(rebalance(other, type="EVEN"), FILTER_FRAME)


def test_metadata_fields_are_not_mistaken_for_time_preset_prefixes() -> None:
    frame = adsets(
        {"adset_id": "1", "lifetime_budget": 500, "lifetime_spend": 0},
        {"adset_id": "2", "lifetime_budget": 900, "lifetime_spend": 0},
    )
    for field in ("lifetime_budget", "adset.lifetime_budget"):
        rule = rebalance([{"field": field, "value": 600, "operator": "GREATER_THAN"}], type="EVEN")
        assert match_filters(rule, frame).to_list() == [False, True]


def test_a_filter_on_a_missing_column_names_the_field() -> None:
    rule = rebalance(
        [{"field": "cost_per_purchase_fb", "value": 1, "operator": "LESS_THAN"}], type="EVEN"
    )
    with pytest.raises(RuleError, match=r"field 'cost_per_purchase_fb': no such column"):
        match_filters(rule, FILTER_FRAME)


def test_numeric_operator_on_text_is_an_error() -> None:
    rule = rebalance([{"field": "name", "value": 1, "operator": "GREATER_THAN"}], type="EVEN")
    with pytest.raises(RuleError, match=r"GREATER_THAN needs a numeric column"):
        match_filters(rule, FILTER_FRAME)


# ------------------------------------------------------------- rebalance: worked examples


def test_even_pauses_matched_and_splits_their_budget_evenly() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1001, "flag": 1},
        {"adset_id": "b", "daily_budget": 2000, "flag": 0},
        {"adset_id": "c", "daily_budget": 3000, "flag": 0},
        {"adset_id": "d", "daily_budget": 500, "flag": 0},
    )
    rule = rebalance(flagged(), type="EVEN")
    plan = apply_rule(rule, frame)
    # D = 1001 over 3 recipients: 333 each and 2 left over → the first two by adset_id.
    assert new_budgets(plan) == {"a": 1001, "b": 2334, "c": 3334, "d": 833}
    assert plan["paused"].to_list() == [True, False, False, False]
    assert plan["matched"].to_list() == [True, False, False, False]
    assert dict(plan.schema) == PLAN_SCHEMA
    assert_conserved(rule, frame, plan)


def test_proportional_follows_target_field() -> None:
    # Meta's own illustration: recipients with reach 10 and 20 get 1/3 and 2/3.
    frame = adsets(
        {"adset_id": "a", "daily_budget": 3000, "flag": 1, "reach": 99.0},
        {"adset_id": "b", "daily_budget": 1000, "flag": 0, "reach": 10.0},
        {"adset_id": "c", "daily_budget": 1000, "flag": 0, "reach": 20.0},
    )
    rule = rebalance(flagged(), type="PROPORTIONAL", target_field="reach")
    plan = apply_rule(rule, frame)
    assert new_budgets(plan) == {"a": 3000, "b": 2000, "c": 3000}
    assert plan["paused"].to_list() == [True, False, False]
    assert_conserved(rule, frame, plan)


def test_proportional_with_all_zero_weights_splits_evenly() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 900, "flag": 1, "reach": 0.0},
        {"adset_id": "b", "daily_budget": 100, "flag": 0, "reach": 0.0},
        {"adset_id": "c", "daily_budget": 100, "flag": 0, "reach": None},
    )
    plan = apply_rule(rebalance(flagged(), type="PROPORTIONAL", target_field="reach"), frame)
    assert new_budgets(plan) == {"a": 900, "b": 550, "c": 550}


def test_no_pause_proportional_reproduces_metas_worked_example() -> None:
    # Meta's rebalance guide: ad sets 1-5, video_view 1-5, 3000 each, rule video_view < 3.
    frame = adsets(
        *({"adset_id": str(i), "daily_budget": 3000, "video_view": float(i)} for i in range(1, 6))
    )
    rule = load_rule(EXAMPLES / "no_pause_proportional.json")
    plan = apply_rule(rule, frame)
    assert plan["new_budget"].to_list() == [400, 800, 4200, 4600, 5000]
    assert plan["paused"].to_list() == [False] * 5
    assert plan["matched"].to_list() == [True, True, False, False, False]
    assert_conserved(rule, frame, plan)


def test_matched_only_proportional_reproduces_metas_worked_example() -> None:
    rows = [{"adset_id": str(i), "daily_budget": 3000, "video_view": float(i)} for i in range(1, 6)]
    rule = rebalance([], type="MATCHED_ONLY_PROPORTIONAL", target_field="video_view")
    plan = apply_rule(rule, adsets(*rows))
    assert plan["new_budget"].to_list() == [1000, 2000, 3000, 4000, 5000]
    # "if ad set 5 had started with 18000 budget, it would end up losing 8000"
    rows[4]["daily_budget"] = 18000
    plan = apply_rule(rule, adsets(*rows))
    assert plan["new_budget"].to_list() == [2000, 4000, 6000, 8000, 10000]
    assert plan["new_budget"][4] - 18000 == -8000
    assert not plan["paused"].any()


def test_matched_only_leaves_unmatched_alone() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1, "roas": 1.0},
        {"adset_id": "b", "daily_budget": 3000, "flag": 1, "roas": 3.0},
        {"adset_id": "c", "daily_budget": 7777, "flag": 0, "roas": 9.0},
    )
    rule = rebalance(flagged(), type="MATCHED_ONLY_PROPORTIONAL", target_field="roas")
    plan = apply_rule(rule, frame)
    assert new_budgets(plan) == {"a": 1000, "b": 3000, "c": 7777}  # already proportional
    frame = frame.with_columns(pl.Series("roas", [3.0, 1.0, 9.0]))
    assert new_budgets(apply_rule(rule, frame)) == {"a": 3000, "b": 1000, "c": 7777}


def test_daily_and_lifetime_are_separate_buckets_with_lifetime_leftover() -> None:
    frame = adsets(
        {"adset_id": "d1", "daily_budget": 1000, "flag": 1},
        {"adset_id": "d2", "daily_budget": 2000, "flag": 0},
        # lifetime: leftover = budget - spend → 6000, 4000, 0
        {"adset_id": "l1", "lifetime_budget": 10000, "lifetime_spend": 4000, "flag": 1},
        {"adset_id": "l2", "lifetime_budget": 5000, "lifetime_spend": 1000, "flag": 0},
        {"adset_id": "l3", "lifetime_budget": 8000, "lifetime_spend": 8000, "flag": 0},
    )
    rule = rebalance(flagged(), type="EVEN")
    plan = apply_rule(rule, frame)
    # daily: d1's 1000 → d2. lifetime: l1's leftover 6000 → 3000 each to l2 and l3, whose new
    # lifetime_budget is spend + new leftover (1000 + 7000, 8000 + 3000).
    assert new_budgets(plan) == {"d1": 1000, "d2": 3000, "l1": 10000, "l2": 8000, "l3": 11000}
    assert plan["budget_type"].to_list() == ["daily", "daily", "lifetime", "lifetime", "lifetime"]
    assert plan["paused"].to_list() == [True, False, True, False, False]
    assert_conserved(rule, frame, plan)
    totals = bucket_conservation(rule, frame, plan)
    assert totals.filter(pl.col("budget_type") == "lifetime")["before"].item() == 10000


def test_no_pause_on_lifetime_keeps_campaign_total() -> None:
    frame = adsets(
        {"adset_id": "l1", "lifetime_budget": 10000, "lifetime_spend": 4000, "flag": 1, "v": 1.0},
        {"adset_id": "l2", "lifetime_budget": 5000, "lifetime_spend": 1000, "flag": 0, "v": 2.0},
    )
    rule = rebalance(flagged(), type="NO_PAUSE_PROPORTIONAL", target_field="v")
    plan = apply_rule(rule, frame)
    # D = 6000 → shares 2000 (l1) and 4000 (l2): l1 = 4000 + 2000, l2 = 1000 + 4000 + 4000.
    assert new_budgets(plan) == {"l1": 6000, "l2": 9000}
    assert plan["new_budget"].sum() == 15000


def test_target_count_below_and_above_the_number_of_recipients() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 600, "flag": 1, "reach": 1.0},
        {"adset_id": "b", "daily_budget": 1000, "flag": 0, "reach": 10.0},
        {"adset_id": "c", "daily_budget": 1000, "flag": 0, "reach": 20.0},
        {"adset_id": "d", "daily_budget": 1000, "flag": 0, "reach": 30.0},
    )
    top1 = rebalance(flagged(), type="PROPORTIONAL", target_field="reach", target_count=1)
    plan = apply_rule(top1, frame)
    assert new_budgets(plan) == {"a": 600, "b": 1000, "c": 1000, "d": 1600}
    assert "not in top 1" in plan.filter(pl.col("adset_id") == "b")["reason"].item()
    top5 = rebalance(flagged(), type="PROPORTIONAL", target_field="reach", target_count=5)
    everyone = rebalance(flagged(), type="PROPORTIONAL", target_field="reach")
    # K = 5 > 3 recipients: all of them, 600 split 1:2:3.
    assert new_budgets(apply_rule(top5, frame)) == {"a": 600, "b": 1100, "c": 1200, "d": 1300}
    assert new_budgets(apply_rule(top5, frame)) == new_budgets(apply_rule(everyone, frame))
    even2 = rebalance(flagged(), type="EVEN", target_field="reach", target_count=2)
    assert new_budgets(apply_rule(even2, frame)) == {"a": 600, "b": 1000, "c": 1300, "d": 1300}


def test_target_count_with_no_pause_and_matched_only() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1, "v": 1.0},
        {"adset_id": "b", "daily_budget": 1000, "flag": 1, "v": 2.0},
        {"adset_id": "c", "daily_budget": 1000, "flag": 0, "v": 3.0},
        {"adset_id": "d", "daily_budget": 1000, "flag": 0, "v": 4.0},
    )
    # NO_PAUSE, K=2 over all four: D = 2000 to d (4/7) and c (3/7) = 1142.86, 857.14.
    no_pause = rebalance(flagged(), type="NO_PAUSE_PROPORTIONAL", target_field="v", target_count=2)
    plan = apply_rule(no_pause, frame)
    assert new_budgets(plan) == {"a": 0, "b": 0, "c": 1857, "d": 2143}
    assert_conserved(no_pause, frame, plan)
    # MATCHED_ONLY, K=1: the matched total 2000 goes to b, the better matched ad set.
    matched_only = rebalance(
        flagged(), type="MATCHED_ONLY_PROPORTIONAL", target_field="v", target_count=1
    )
    assert new_budgets(apply_rule(matched_only, frame)) == {"a": 0, "b": 2000, "c": 1000, "d": 1000}


def test_is_inverse_ranks_lower_cost_higher() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 3000, "flag": 1, "cost_per_purchase_fb": 9.0},
        {"adset_id": "b", "daily_budget": 1000, "flag": 0, "cost_per_purchase_fb": 2.0},
        {"adset_id": "c", "daily_budget": 1000, "flag": 0, "cost_per_purchase_fb": 4.0},
    )
    cpa = "cost_per_purchase_fb"
    direct = rebalance(flagged(), type="PROPORTIONAL", target_field=cpa)
    inverse = rebalance(flagged(), type="PROPORTIONAL", target_field=cpa, is_inverse=True)
    alias = rebalance(flagged(), type="INVERSE_PROPORTIONAL", target_field=cpa)
    assert new_budgets(apply_rule(direct, frame)) == {"a": 3000, "b": 2000, "c": 3000}
    # weights 1/2 and 1/4 → 2/3 and 1/3 of 3000
    assert new_budgets(apply_rule(inverse, frame)) == {"a": 3000, "b": 3000, "c": 2000}
    assert apply_rule(alias, frame)["new_budget"].to_list() == [3000, 3000, 2000]
    top1 = rebalance(
        flagged(), type="PROPORTIONAL", target_field=cpa, is_inverse=True, target_count=1
    )
    assert new_budgets(apply_rule(top1, frame)) == {"a": 3000, "b": 4000, "c": 1000}


def test_is_cross_campaign_false_keeps_money_inside_each_campaign() -> None:
    frame = adsets(
        {"adset_id": "a", "campaign_id": "c1", "daily_budget": 1000, "flag": 1},
        {"adset_id": "b", "campaign_id": "c1", "daily_budget": 1000, "flag": 0},
        {"adset_id": "c", "campaign_id": "c2", "daily_budget": 1000, "flag": 0},
    )
    within = rebalance(flagged(), type="EVEN")
    across = rebalance(flagged(), type="EVEN", is_cross_campaign=True)
    plan_within = apply_rule(within, frame)
    plan_across = apply_rule(across, frame)
    assert new_budgets(plan_within) == {"a": 1000, "b": 2000, "c": 1000}
    assert new_budgets(plan_across) == {"a": 1000, "b": 1500, "c": 1500}
    assert_conserved(within, frame, plan_within)
    assert_conserved(across, frame, plan_across)


def test_no_recipients_means_nothing_moves_and_nothing_is_paused() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1},
        {"adset_id": "b", "daily_budget": 2000, "flag": 1},
    )
    plan = apply_rule(rebalance(flagged(), type="EVEN"), frame)
    assert plan["new_budget"].to_list() == [1000, 2000]
    assert plan["paused"].to_list() == [False, False]
    assert plan["matched"].to_list() == [True, True]
    assert all("no recipients" in r for r in plan["reason"])


def test_no_matched_ad_set_means_no_change() -> None:
    frame = adsets({"adset_id": "a", "daily_budget": 1000, "flag": 0})
    plan = apply_rule(rebalance(flagged(), type="EVEN"), frame)
    assert plan["new_budget"].to_list() == [1000]
    assert "no matched ad set" in plan["reason"].item()


def test_negative_target_values_are_an_error() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1, "v": 1.0},
        {"adset_id": "b", "daily_budget": 1000, "flag": 0, "v": -1.0},
    )
    with pytest.raises(RuleError, match=r"ad set 'b' has a negative value in column 'v'"):
        apply_rule(rebalance(flagged(), type="PROPORTIONAL", target_field="v"), frame)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"daily_budget": 1, "lifetime_budget": 2, "lifetime_spend": 0}, "both"),
        ({}, "neither"),
        ({"lifetime_budget": 10}, "no lifetime_spend"),
        ({"lifetime_budget": 10, "lifetime_spend": 11}, "lifetime_spend is above lifetime_budget"),
        ({"daily_budget": -1}, "daily_budget is negative"),
    ],
)
def test_bad_frames_are_rejected(row: dict[str, Any], message: str) -> None:
    frame = adsets({"adset_id": "x", "flag": 0, **row})
    with pytest.raises(AdsetFrameError, match=message):
        apply_rule(rebalance(flagged(), type="EVEN"), frame)


def test_fractional_budgets_are_rejected() -> None:
    frame = pl.DataFrame(
        {
            "adset_id": ["x"],
            "campaign_id": ["c1"],
            "daily_budget": [10.5],
            "lifetime_budget": [None],
            "lifetime_spend": [None],
            "flag": [0],
        }
    )
    with pytest.raises(AdsetFrameError, match=r"daily_budget 10\.5 is not an integer number"):
        apply_rule(rebalance(flagged(), type="EVEN"), frame)


# ----------------------------------------------------------------------- CHANGE_BUDGET


def test_change_budget_percentage_with_a_cap() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1},
        {"adset_id": "b", "daily_budget": 500, "flag": 1},
        {"adset_id": "c", "daily_budget": 1200, "flag": 1},
        {"adset_id": "d", "daily_budget": 1005, "flag": 1},
        {"adset_id": "e", "daily_budget": 1000, "flag": 0},
    )
    rule = change(flagged(), {"amount": 20, "unit": "PERCENTAGE", "limit": 1100})
    plan = apply_rule(rule, frame)
    # a: 1200 capped at 1100; b: 600; c: already above the cap, not cut; d: 1206 → 1100.
    assert new_budgets(plan) == {"a": 1100, "b": 600, "c": 1200, "d": 1100, "e": 1000}
    assert not plan["paused"].any()
    rounding = change(flagged(), {"amount": 15, "unit": "PERCENTAGE"})
    # 1005 × 15 % = 150.75 → 151 (half away from zero)
    assert new_budgets(apply_rule(rounding, frame))["d"] == 1156


def test_change_budget_decrease_with_a_floor_and_never_negative() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "flag": 1},
        {"adset_id": "b", "daily_budget": 700, "flag": 1},
        {"adset_id": "l", "lifetime_budget": 10000, "lifetime_spend": 9000, "flag": 1},
    )
    pct = change(flagged(), {"amount": -30, "unit": "PERCENTAGE", "limit": 800})
    # a: 700 held at 800; b: 490 but already under the floor 800, so unchanged; l: 7000 → 8000.
    assert new_budgets(apply_rule(pct, frame)) == {"a": 800, "b": 700, "l": 9000}
    cash = change(flagged(), {"amount": -2000, "unit": "ACCOUNT_CURRENCY"})
    # daily never below 0; a lifetime budget never below its spend
    assert new_budgets(apply_rule(cash, frame)) == {"a": 0, "b": 0, "l": 9000}
    up = change(flagged(), {"amount": 500, "unit": "ACCOUNT_CURRENCY"})
    assert new_budgets(apply_rule(up, frame)) == {"a": 1500, "b": 1200, "l": 10500}


def test_change_budget_toward_a_target_value() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000, "cost_per_mobile_app_install": 4.0, "roas": 3.0},
        {"adset_id": "b", "daily_budget": 1000, "cost_per_mobile_app_install": 8.0, "roas": 1.0},
        {"adset_id": "c", "daily_budget": 1000, "cost_per_mobile_app_install": None, "roas": 2.0},
    )
    # Meta's worked example: target 5.0, current 4.0 → +25 %.
    cost = change([], {"amount": 5.0, "target_field": "cost_per_mobile_app_install"})
    plan = apply_rule(cost, frame)
    assert new_budgets(plan) == {"a": 1250, "b": 625, "c": 1000}
    assert "skipped" in plan.filter(pl.col("adset_id") == "c")["reason"].item()
    capped = change(
        [], {"amount": 5.0, "target_field": "cost_per_mobile_app_install", "limit": [700, 1200]}
    )
    assert new_budgets(apply_rule(capped, frame)) == {"a": 1200, "b": 700, "c": 1000}
    # ROAS: higher is better, so current 3.0 against target 2.0 scales by 1.5.
    roas = change([], {"amount": 2.0, "target_field": "roas"})
    assert new_budgets(apply_rule(roas, frame)) == {"a": 1500, "b": 500, "c": 1000}


def test_action_frequency_skips_recently_changed_ad_sets() -> None:
    frame = adsets(
        {"adset_id": "a", "daily_budget": 1000},
        {"adset_id": "b", "daily_budget": 1000},
        {"adset_id": "c", "daily_budget": 1000},
    )
    now = datetime(2026, 3, 2, 12, 0)
    rule = change([], {"amount": 10, "unit": "PERCENTAGE"}, frequency=60)
    last = {"a": now - timedelta(minutes=30), "b": now - timedelta(minutes=90)}
    plan = apply_rule(rule, frame, now=now, last_applied=last)
    assert new_budgets(plan) == {"a": 1000, "b": 1100, "c": 1100}
    reason = plan.filter(pl.col("adset_id") == "a")["reason"].item()
    assert "changed 30 min ago" in reason and "action_frequency is 60 min" in reason
