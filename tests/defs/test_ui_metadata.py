"""What the asset pages show, from real runs: names next to ids, one money format, pools
against their floors and ceilings, the triggers that moved no money, per-pool numbers to plot,
per-partition day totals, a bounded chart."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_helpers import ALL_KEYS, run_cycle, run_execution

from budget_pipeline.alerts.markdown import parse_tables
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.defs.charts import MAX_INLINE_BYTES
from budget_pipeline.defs.decisions.plan_metadata import held_triggers
from budget_pipeline.defs.display import readable_message
from budget_pipeline.money import format_money

CONFIG = load_pools(DEFAULT_POOLS_PATH)
MAX_METADATA_BYTES = 64_000  # one materialization's metadata, chart included


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp / "warehouse.duckdb"
    result = run_cycle(instance, db_path, ALL_KEYS[-35:])
    execution = run_execution(instance, db_path)
    assert execution.success
    return db_path, result, execution


def _query(db_path: Path, sql: str, params=None) -> pl.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def _values(materialization) -> dict:
    return {k: v.value for k, v in materialization.metadata.items()}


def _size(materialization) -> int:
    return len(json.dumps({k: str(v) for k, v in _values(materialization).items()}))


def test_the_plan_names_every_moved_entity_and_shows_money_one_way(cycled):
    db_path, result, _ = cycled
    (mat,) = result.asset_materializations_for_node("rebalance_plan")
    meta = _values(mat)
    moved = _query(
        db_path,
        "SELECT p.entity_id, e.name, p.old_budget, p.new_budget FROM rebalance_plans p "
        "JOIN ad_entities e USING (entity_id) WHERE p.plan_id = ? AND (p.delta != 0 OR p.pause)",
        [meta["plan_id"]],
    )
    (moves, *_) = parse_tables(meta["moves_table"])
    rows = {r["entity_id"]: r for r in moves.rows}
    assert set(rows) == set(moved["entity_id"])
    for r in moved.iter_rows(named=True):
        shown = rows[r["entity_id"]]
        assert shown["name"] == r["name"] and shown["name"]
        assert shown["old"] == format_money(r["old_budget"], "EUR")
        assert shown["new"] == format_money(r["new_budget"], "EUR")
    # the CLI's counts ("6 budget changes, 1 pause") are the table's
    header = re.match(
        r"\*\*[^*]+\*\*: (\d+) budget change\(s\) and (\d+) pause\(s\)", meta["moves_table"]
    )
    assert (int(header[1]), int(header[2])) == (meta["moves"], meta["pauses"])
    assert meta["moves"] + meta["pauses"] == len(moves.rows)
    assert re.fullmatch(r"\d[\d,]*\.\d\d EUR", meta["money_moved"])


def test_per_pool_shows_floor_ceiling_and_utilisation_and_plots_floats(cycled):
    db_path, result, _ = cycled
    (mat,) = result.asset_materializations_for_node("rebalance_plan")
    meta = _values(mat)
    (table,) = parse_tables(meta["per_pool"])
    plan = _query(db_path, "SELECT * FROM rebalance_plans WHERE plan_id = ?", [meta["plan_id"]])
    for pool in CONFIG.pools:
        row = next(r for r in table.rows if r["pool"] == pool.name)
        after = int(plan.filter(pl.col("pool") == pool.name)["new_budget"].sum())
        moved = int(plan.filter(pl.col("pool") == pool.name)["delta"].clip(lower_bound=0).sum())
        ceiling = CONFIG.ceiling_minor(pool.name)
        assert row["floor"] == format_money(CONFIG.floor_minor(pool.name), "EUR")
        assert row["ceiling"] == format_money(ceiling, "EUR")
        assert row["after"] == format_money(after, "EUR")
        assert row["utilisation"] == f"{round(after * 100 / ceiling, 1)} %"
        # plain floats, so the asset page plots them over materializations
        assert mat.metadata[f"{pool.name}/budget"] == dg.MetadataValue.float(after / 100)
        assert meta[f"{pool.name}/money_moved"] == moved / 100
        for measure in ("spend", "value", "roas", "mean_score", "utilisation_pct"):
            assert isinstance(meta[f"{pool.name}/{measure}"], float), measure
        assert meta[f"{pool.name}/spend"] > 0
    spend = _query(
        db_path,
        "SELECT sum(i.spend) AS spend FROM insights i JOIN ad_entities e ON e.entity_id = i.adset_id "
        "WHERE e.pool = 'testing' AND i.ts >= CAST(? AS TIMESTAMP) - INTERVAL 24 HOUR "
        "AND i.ts < CAST(? AS TIMESTAMP)",
        [meta["as_of"], meta["as_of"]],
    )["spend"][0]
    assert meta["testing/spend"] == pytest.approx(spend, abs=0.01)


def test_every_fired_trigger_that_moved_no_money_is_listed_with_what_held_it(cycled):
    db_path, result, _ = cycled
    (mat,) = result.asset_materializations_for_node("rebalance_plan")
    meta = _values(mat)
    fired = _query(
        db_path,
        "SELECT t.entity_id, t.action FROM trigger_actions t WHERE t.as_of = CAST(? AS TIMESTAMP) "
        "AND t.action IN ('increase', 'decrease', 'pause')",
        [meta["as_of"]],
    )
    plan = _query(db_path, "SELECT * FROM rebalance_plans WHERE plan_id = ?", [meta["plan_id"]])
    done = fired.join(plan, on="entity_id", how="left").filter(
        ((pl.col("action") == "increase") & (pl.col("delta") > 0))
        | ((pl.col("action") == "decrease") & (pl.col("delta") < 0))
        | ((pl.col("action") == "pause") & pl.col("pause"))
    )
    expected = fired.height - done.height
    assert expected > 0, "the default account fires triggers the plan cannot carry out"
    assert meta["triggers_held"] == expected
    held = next(t for t in parse_tables(meta["moves_table"]) if "held_by" in t.header)
    assert len(held.rows) == expected
    assert all(r["held_by"] and r["name"] for r in held.rows)
    reasons = " ".join(r["held_by"] for r in held.rows)
    # a lifetime budget the planner never moves; a pause trigger the default (marginal) policy
    # weighed and answered with its own capped cut, its reason in numbers
    assert "lifetime budget" in reasons and "marginal return" in reasons


def test_held_triggers_say_why_for_each_kind_of_entity():
    plan = pl.DataFrame(
        {
            "entity_id": ["a", "b"],
            "delta": [0, 0],
            "pause": [False, True],
            "reason": ["held: the pool is at its floor", "paused"],
        }
    )
    actions = pl.DataFrame(
        {
            "entity_id": ["a", "b", "c", "d", "e"],
            "action": ["decrease", "decrease", "pause", "increase", "pause"],
            "pct": [25.0, 25.0, None, 15.0, None],
            "trigger": ["t"] * 5,
            "score": [0.4, 0.3, 0.2, 0.9, 0.2],
        }
    )
    entities = pl.DataFrame(
        {
            "entity_id": ["a", "b", "c", "d", "e"],
            "entity_type": ["adset"] * 5,
            "budget_type": ["daily", "daily", "lifetime", None, "daily"],
            "pool": ["p", "p", "p", "p", None],
            "status": ["ACTIVE"] * 5,
        }
    )
    held = dict(held_triggers(plan, actions, entities).select("entity_id", "held_by").iter_rows())
    assert held == {
        "a": "held: the pool is at its floor",
        "b": "paused instead: a pause trigger fired on it too",
        "c": "lifetime budget: the planner moves daily budgets only; its budget and status are "
        "left as they are",
        "d": "its budget is on its campaign (campaign budget): the campaign is planned as one "
        "budget holder",
        "e": "its campaign is in no pool: never moved",
    }


def test_scores_triggers_and_action_log_name_entities_and_show_money(cycled):
    _, result, execution = cycled
    scores = _values(result.asset_materializations_for_node("composite_scores")[-1])
    (table,) = parse_tables(scores["scores_and_why"])
    assert all(r["name"] for r in table.rows)
    assert any(
        re.search(r"\d\.\d\d EUR \(usual \d[\d,]*\.\d\d EUR\)", r["cpa"]) for r in table.rows
    )
    assert all(isinstance(scores[f"{p.name}/mean_score"], float) for p in CONFIG.pools)
    triggers = _values(result.asset_materializations_for_node("trigger_states")[-1])
    (fired,) = parse_tables(triggers["actions"])
    assert fired.rows and all(r["name"] for r in fired.rows)
    log = [
        m
        for m in execution.asset_materializations_for_node("budget_execution")
        if m.asset_key == dg.AssetKey("action_log")
    ][-1]
    (entries,) = parse_tables(_values(log)["entries"])
    assert entries.rows
    for r in entries.rows:
        assert r["name"] and r["before_budget"].endswith(" EUR")
        assert not re.search(r"-> \d+(?![\d.,])", r["message"]), r["message"]  # no bare minor units


def test_readable_message_turns_budgets_into_money_and_leaves_errors_alone():
    assert readable_message("observe mode: would set daily_budget 2000 -> 2069", "EUR") == (
        "observe mode: would set daily_budget 20.00 EUR -> 20.69 EUR"
    )
    assert readable_message(
        "daily_budget moved since the plan was made: planned from 2000, found 4242; not forced",
        "EUR",
    ) == (
        "daily_budget moved since the plan was made: planned from 20.00 EUR, found 42.42 EUR; "
        "not forced"
    )
    error = "InvalidParameterError: Graph API #100 [HTTP 400, POST /v25.0/120210000010001]"
    assert readable_message(error, "EUR") == error
    assert readable_message("rolled back: daily_budget 1500 -> 1200", "JPY") == (
        "rolled back: daily_budget 1,500 JPY -> 1,200 JPY"
    )


def test_each_partition_shows_its_own_day(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp_path / "w.duckdb"
    keys = ALL_KEYS[-4:-1]
    result = run_cycle(instance, db_path, keys)
    per_day = _query(
        db_path,
        "SELECT CAST(date AS VARCHAR) AS day, round(sum(spend), 2) AS spend, count(*) AS rows "
        "FROM insights GROUP BY date",
    )
    truth = {d: (s, r) for d, s, r in per_day.iter_rows()}
    for node in ("raw_insights", "insights"):
        mats = result.asset_materializations_for_node(node)
        assert sorted(m.partition for m in mats) == keys
        for m in mats:
            meta = _values(m)
            assert meta["day"] == m.partition
            assert (meta["spend"], meta["rows"]) == pytest.approx(truth[m.partition], abs=0.01)
        assert len({_values(m)["spend"] for m in mats}) == len(keys)  # not the window's total


def test_metadata_stays_bounded_and_the_chart_is_inline_and_on_disk(cycled):
    _, result, _ = cycled
    (mat,) = result.asset_materializations_for_node("rebalance_plan")
    meta = _values(mat)
    assert _size(mat) < MAX_METADATA_BYTES
    encoded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", meta["chart"])[1]
    assert len(encoded) <= MAX_INLINE_BYTES
    png = Path(meta["chart_path"]).read_bytes()
    assert base64.b64decode(encoded) == png and png.startswith(b"\x89PNG")
    for node in ("composite_scores", "trigger_states"):
        assert _size(result.asset_materializations_for_node(node)[-1]) < MAX_METADATA_BYTES
    assert datetime.fromisoformat(meta["as_of"])  # a timestamp, as the alerts expect


def test_baselines_name_each_ad_set_and_show_its_usual_numbers_as_money(cycled):
    db_path, result, _ = cycled
    meta = _values(result.asset_materializations_for_node("entity_baselines")[-1])
    (table,) = parse_tables(meta["baselines"])
    names = dict(
        _query(
            db_path, "SELECT entity_id, name FROM ad_entities WHERE entity_type = 'adset'"
        ).iter_rows()
    )
    assert len(table.rows) == meta["entities"]
    for row in table.rows:
        assert row["name"] == names[row["entity_id"]]
        assert row["spend"].endswith(" EUR") and row["ctr"].endswith(" %")
