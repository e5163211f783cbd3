"""Alert text built from metadata values: names, money, fallbacks; and the markdown reader."""

from __future__ import annotations

import polars as pl

from budget_pipeline.alerts.markdown import parse_tables, table_with
from budget_pipeline.alerts.messages import (
    Alert,
    FailedCheck,
    check_alert,
    drift_alert,
    execution_alert,
    flagged_pools,
    pause_alert,
    run_failure_alert,
)
from budget_pipeline.engine.report import markdown_table

UI = "http://dagster.example.com"
MOVES = """**plan-7**: 2 move(s) over 9 budget holders, 1 pause(s), 0 trigger(s) held.

| pool | tier | before | after | change |
|---|---:|---:|---:|---:|
| prospecting | 2 | 1,140.00 EUR | 1,140.00 EUR | 0.00 EUR |

| entity | name | pool | action | old | new | delta | target | reason |
|---|---|---|---|---:|---:|---:|---:|---|
| 111 | Spring \\| Broad | prospecting | pause | 130.00 EUR | 130.00 EUR | 0.00 EUR | 130.00 EUR | score_below_0.35: pause (score 0.33) |
| 222 | Retarget 7d | prospecting | increase | 20.00 EUR | 20.69 EUR | +0.69 EUR | 20.69 EUR | absorbs |
"""


def test_markdown_tables_are_read_back_as_written_by_the_report_helper():
    frame = pl.DataFrame({"entity_id": ["1", "2"], "message": ["a|b", None], "n": [1.5, 2.0]})
    (table,) = parse_tables("Title\n\n" + markdown_table(frame) + "\n")
    assert table.header == ("entity_id", "message", "n")
    assert table.rows == (
        {"entity_id": "1", "message": "a|b", "n": "1.500"},
        {"entity_id": "2", "message": "", "n": "2.000"},
    )
    cut = markdown_table(pl.DataFrame({"a": list(range(5))}), max_rows=2)
    assert [r["a"] for r in parse_tables(cut)[0].rows] == ["0", "1"]  # the note is not a row
    assert table_with(MOVES, "action").rows[0]["name"] == "Spring | Broad"
    assert table_with(MOVES, "no such column") is None


def test_a_pause_names_the_ad_set_with_its_id_pool_budget_and_reason():
    alert = pause_alert(
        {"plan_id": "plan-7", "pauses": 1, "moves_table": MOVES, "as_of": "2026-10-31 00:00:00"},
        run_id="run-abc",
        ui_url=UI,
    )
    assert alert.title == "Plan plan-7 pauses 1 ad set(s) or campaign(s)"
    assert alert.lines == (
        "• Spring | Broad (111) in pool prospecting, daily budget 130.00 EUR kept: "
        "score_below_0.35: pause (score 0.33)",
        "Data as of 2026-10-31 00:00:00.",
    )
    assert alert.key == "pause:plan-7" and alert.link == f"{UI}/runs/run-abc"
    # the entity's own name wins over its campaign's when both are there
    both = (
        MOVES.replace("| entity | name |", "| entity | campaign name | name |")
        .replace("|---|---|---|---|", "|---|---|---|---|---|")
        .replace("| 111 |", "| 111 | Spring campaign |")
        .replace("| 222 |", "| 222 | Retarget |")
    )
    two = pause_alert({"plan_id": "p", "pauses": 1, "moves_table": both}, run_id="r", ui_url=UI)
    assert two.lines[0].startswith("• Spring | Broad (111) in pool prospecting")


def test_a_pause_without_a_readable_table_still_says_plan_and_count():
    alert = pause_alert(
        {"plan_id": "plan-8", "pauses": 3, "moves_table": "a chart, not a table"},
        run_id="r",
        ui_url=UI,
    )
    assert alert.lines == ("The plan pauses 3; see moves_table on rebalance_plan for which.",)
    assert pause_alert({"plan_id": "plan-9", "pauses": 0}, run_id="r", ui_url=UI) is None


LOG = markdown_table(
    pl.DataFrame(
        {
            "entity_id": ["1", "2", "3", "4"],
            "pool": ["testing"] * 4,
            "mode": ["live"] * 4,
            "step": ["budget", "budget", "pause", "budget"],
            "before_budget": [2000, 1500, 900, 1000],
            "after_budget": [1700, 1613, 900, 1200],
            "status": ["applied", "skipped", "failed", "deferred"],
            "message": ["ok", "found 4242, expected 1500", "HTTP 500", "waits for freed money"],
        }
    )
)


def test_a_partly_applied_execution_lists_the_steps_in_major_units():
    alert = execution_alert(
        {"plan_id": "plan-7", "applied": 1, "failed": 1, "skipped": 1, "deferred": 1},
        LOG,
        currency="EUR",
        run_id="run-1",
        ui_url=UI,
    )
    assert alert.title == "Plan plan-7 partly applied: 1 failed, 1 skipped, 1 deferred"
    assert alert.lines[:4] == (
        "Steps: 1 applied, 1 failed, 1 skipped, 1 deferred.",
        "• 2 (pool testing) budget 15.00 EUR → 16.13 EUR: skipped — found 4242, expected 1500",
        "• 3 (pool testing) pause: failed — HTTP 500",
        "• 4 (pool testing) budget 10.00 EUR → 12.00 EUR: deferred — waits for freed money",
    )


def test_execution_money_in_a_zero_decimal_currency_and_without_a_known_currency():
    meta = {"plan_id": "p", "deferred": 1}
    yen = execution_alert(meta, LOG, currency="JPY", run_id="r", ui_url=UI)
    assert "• 4 (pool testing) budget 1,000 JPY → 1,200 JPY: deferred" in yen.lines[3]
    unknown = execution_alert(meta, LOG, currency=None, run_id="r", ui_url=UI)
    assert "budget 1000 → 1200" in unknown.lines[3]  # never a made-up currency
    clean = {"plan_id": "p", "applied": 3, "failed": 0, "skipped": 0}
    assert execution_alert(clean, LOG, currency="EUR", run_id="r", ui_url=UI) is None


def test_drift_flags_from_json_or_text_and_the_same_report_has_one_key():
    assert flagged_pools(["a", "b"]) == ["a", "b"]
    assert (
        flagged_pools('["a"]') == ["a"] and flagged_pools("[]") == [] and flagged_pools(None) == []
    )
    one = drift_alert({"flagged_pools": '["testing", "prospecting"]'}, partition="2026-10-26",
                      run_id="r1", ui_url=UI)  # fmt: skip
    two = drift_alert({"flagged_pools": ["prospecting", "testing"]}, partition="2026-10-26",
                      run_id="r2", ui_url=UI)  # fmt: skip
    assert one.key == two.key and one.lines[0] == "Pools to recalibrate: prospecting, testing."
    assert drift_alert({"flagged_pools": []}, partition=None, run_id="r", ui_url=UI) is None


def test_a_run_failure_says_job_step_error_partitions_and_plan():
    alert = run_failure_alert(
        "budget_cycle_job",
        run_id="run-9",
        ui_url=UI,
        step="raw_insights",
        error="MetaApiError: token expired",
        tags={
            "dagster/asset_partition_range_start": "2026-10-01",
            "dagster/asset_partition_range_end": "2026-10-31",
            "budget_pipeline/plan_id": "plan-3",
        },
        plan_tag="budget_pipeline/plan_id",
    )
    assert alert.title == "Run failed: budget_cycle_job"
    assert alert.lines == (
        "Step raw_insights failed: MetaApiError: token expired",
        "Partitions 2026-10-01 … 2026-10-31.",
    )
    assert alert.plan_id == "plan-3"


def test_an_alert_survives_the_json_cursor_round_trip():
    alert = Alert("pause", "pause:p", "t", ("a", "b"), "p", "r", f"{UI}/runs/r")
    assert Alert.from_json(alert.to_json()) == alert


def test_failed_checks_on_one_plan_make_one_alert_naming_the_entities():
    details = markdown_table(
        pl.DataFrame(
            {"entity_id": [str(i) for i in range(7)], "name": [f"Ad set {i}" for i in range(7)]}
        )
    )
    alert = check_alert(
        "plan-7",
        [
            FailedCheck("rebalance_plan_min_budget", 7, "No budget below the minimum.", details),
            FailedCheck("rebalance_plan_conserves_money", 1, None, "_(no rows)_"),
        ],
        run_id="run-2",
        ui_url=UI,
    )
    assert alert.title == "Plan plan-7 blocked: 2 blocking check(s) failed"
    assert alert.lines[:2] == (
        "• rebalance_plan_conserves_money — 1 violation(s)",
        "• rebalance_plan_min_budget — 7 violation(s): No budget below the minimum. Affects "
        "Ad set 0 (0), Ad set 1 (1), Ad set 2 (2), Ad set 3 (3), Ad set 4 (4) (+2).",
    )
    assert alert.key == "check:plan-7:rebalance_plan_conserves_money,rebalance_plan_min_budget"
