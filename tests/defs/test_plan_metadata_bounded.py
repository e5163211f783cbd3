"""The plan's metadata stays bounded whatever the size of the account (issue 11: the moves
table of a 100k-ad-set plan was a 21 MB string stored in the event log every run)."""

from __future__ import annotations

import json

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.alerts.markdown import parse_tables
from budget_pipeline.bench.inputs import planning_inputs
from budget_pipeline.defs.decisions.plan_metadata import plan_metadata
from budget_pipeline.defs.display import entity_labels
from budget_pipeline.engine.allocator import allocate
from budget_pipeline.money import format_money


def _metadata(adsets: int, pools: int, tmp_path, pause: int = 0) -> tuple[dict, pl.DataFrame]:
    inp = planning_inputs(adsets, pools)
    plan = allocate(
        inp["entities"], inp["proposals"], inp["config"], as_of=inp["as_of"], scores=inp["scores"]
    )
    if pause:  # a pause keeps its budget; it must always be listed (the pause alert quotes it)
        small = plan.sort("old_budget")["entity_id"].head(pause)
        paused = pl.col("entity_id").is_in(small.implode())
        plan = plan.with_columns(
            pause=paused,
            action=pl.when(paused).then(pl.lit("pause")).otherwise(pl.col("action")),
            new_budget=pl.when(paused).then(pl.col("old_budget")).otherwise(pl.col("new_budget")),
        ).with_columns(delta=pl.col("new_budget") - pl.col("old_budget"))
    meta = plan_metadata(
        plan,
        "plan-test",
        inp["as_of"],
        inp["config"],
        labels=entity_labels(inp["entities"]),
        entities=inp["entities"],
        actions=contracts.empty(contracts.ACTIONS),
        scores=inp["scores"].with_columns(pool=pl.lit("x")),
        performance=pl.DataFrame(
            schema={"pool": pl.Utf8, "spend": pl.Float64, "value": pl.Float64}
        ),
        charts=tmp_path,
    )
    return {k: getattr(v, "value", v) for k, v in meta.items()}, plan


def test_the_moves_table_is_the_largest_moves_and_counts_whatever_the_size(tmp_path):
    sizes = {}
    for adsets in (2_000, 20_000):
        meta, plan = _metadata(adsets, 20, tmp_path)
        moves_md = meta["moves_table"]
        sizes[adsets] = len(json.dumps({k: str(v) for k, v in meta.items()}))
        (table, *_) = parse_tables(moves_md)
        assert len(table.rows) == 60
        moved = plan.filter(pl.col("delta") != 0)
        assert f"all {moved.height:,} are in DuckDB table rebalance_plans" in moves_md
        # the largest by money, in order
        top = moved.with_columns(size=pl.col("delta").abs()).sort("size", descending=True).head(60)
        shown = [r["change"].lstrip("+-") for r in table.rows]
        assert shown == [format_money(int(v), "EUR") for v in top["size"]]
        assert meta["moves"] == moved.height  # the counts are of every move
    assert sizes[20_000] < 1.2 * sizes[2_000]  # ten times the ad sets, (almost) no more text


def test_pauses_come_first_so_the_pause_alert_always_sees_them(tmp_path):
    meta, _plan = _metadata(5_000, 10, tmp_path, pause=3)
    (table, *_) = parse_tables(meta["moves_table"])
    assert [r["action"] for r in table.rows[:3]] == ["pause"] * 3
    assert meta["pauses"] == 3
