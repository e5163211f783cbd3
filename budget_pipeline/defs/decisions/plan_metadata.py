"""The metadata of ``rebalance_plan``: its counts, its pools against their floors and
ceilings, the largest moves and the held triggers by name, per-pool floats to plot, a chart.

Bounded whatever the size of the account: the tables show at most ``MAX_TABLE_ROWS`` rows (the
pauses, then the largest moves by money) with counts of the rest; every row stays in DuckDB.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.defs.charts import chart_metadata
from budget_pipeline.defs.decisions.metadata import BUDGET_ACTIONS, MAX_TABLE_ROWS, not_shown
from budget_pipeline.defs.display import money, money_columns, to_major, with_names
from budget_pipeline.engine.report import markdown_table

# --- rebalance_plan -------------------------------------------------------------------------


def pool_performance(con: duckdb.DuckDBPyConnection, as_of: datetime, hours: int) -> pl.DataFrame:
    """``pool, spend, value, conversions`` of the evaluation interval before ``as_of``."""
    return db.read(con, "select_pool_performance", {"as_of": as_of, "hours": hours})


def pool_table(plan: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Per pool (minor units): tier, mode, floor, ceiling, before, after, moved (money that
    changed hands inside or into it), utilisation (after ÷ ceiling, %) and where it stands."""
    bounds = pl.DataFrame(
        {
            "pool": [p.name for p in config.pools],
            "mode": [p.mode for p in config.pools],
            "floor": [config.floor_minor(p.name) for p in config.pools],
            "ceiling": [config.ceiling_minor(p.name) for p in config.pools],
        },
        schema={"pool": pl.Utf8, "mode": pl.Utf8, "floor": pl.Int64, "ceiling": pl.Int64},
    )
    totals = plan.group_by("pool", "tier").agg(
        before=pl.col("old_budget").sum().cast(pl.Int64),
        after=pl.col("new_budget").sum().cast(pl.Int64),
        moved=pl.col("delta").clip(lower_bound=0).sum().cast(pl.Int64),
        changes=(pl.col("delta") != 0).sum().cast(pl.Int64),
        pauses=pl.col("pause").sum().cast(pl.Int64),
    )
    after, floor, ceiling = pl.col("after"), pl.col("floor"), pl.col("ceiling")
    return (
        totals.join(bounds, on="pool", how="left")
        .with_columns(
            utilisation_pct=(after * 100 / ceiling).round(1),
            position=pl.when(after < floor)
            .then(pl.lit("below floor"))
            .when(after == floor)
            .then(pl.lit("at floor"))
            .when(after > ceiling)
            .then(pl.lit("above ceiling"))
            .when(after == ceiling)
            .then(pl.lit("at ceiling"))
            .otherwise(pl.lit("within")),
        )
        .sort("tier", "pool")
    )


def held_triggers(
    plan: pl.DataFrame, actions: pl.DataFrame, entities: pl.DataFrame
) -> pl.DataFrame:
    """Every fired budget action (increase, decrease, pause) that the plan did not carry out,
    with what held it: the plan's own reason for a budget holder, else why the entity is not
    one (its budget is on its campaign, a lifetime budget, no pool)."""
    fired = actions.filter(pl.col("action").is_in(BUDGET_ACTIONS))
    planned = plan.select(
        "entity_id", "delta", pl.col("pause").alias("paused"), pl.col("reason").alias("plan_reason")
    )
    info = entities.select("entity_id", "entity_type", "budget_type", "pool", "status")
    joined = fired.join(planned, on="entity_id", how="left").join(info, on="entity_id", how="left")
    done = (
        ((pl.col("action") == "increase") & (pl.col("delta") > 0))
        | ((pl.col("action") == "decrease") & (pl.col("delta") < 0))
        | ((pl.col("action") == "pause") & pl.col("paused"))
    ).fill_null(False)
    why = (
        pl.when(pl.col("paused") & (pl.col("action") != "pause"))
        .then(pl.lit("paused instead: a pause trigger fired on it too"))
        .when(pl.col("plan_reason").is_not_null())
        .then(pl.col("plan_reason"))
        .when(pl.col("pool").is_null())
        .then(pl.lit("its campaign is in no pool: never moved"))
        .when(pl.col("budget_type") == "lifetime")
        .then(
            pl.lit(
                "lifetime budget: the planner moves daily budgets only; its budget and status "
                "are left as they are"
            )
        )
        .when(pl.col("budget_type").is_null() & (pl.col("entity_type") == "adset"))
        .then(
            pl.lit(
                "its budget is on its campaign (campaign budget): the campaign is planned as "
                "one budget holder"
            )
        )
        .when(pl.col("status") != "ACTIVE")
        .then(pl.format("not active ({})", "status"))
        .otherwise(pl.lit("not a budget holder in any pool"))
    )
    return (
        joined.filter(~done)
        .with_columns(
            fired=pl.when(pl.col("pct").is_not_null())
            .then(pl.format("{} {} %", "action", pl.col("pct").round(1)))
            .otherwise(pl.col("action")),
            held_by=why,
        )
        .select("entity_id", "pool", "trigger", "fired", pl.col("score").round(3), "held_by")
        .sort("pool", "entity_id", nulls_last=True)
    )


def _moves_markdown(
    plan: pl.DataFrame, held: pl.DataFrame, labels: pl.DataFrame, plan_id: str, currency: str
) -> str:
    changes = int((plan["delta"] != 0).sum())
    pauses = int(plan["pause"].sum())
    # Bounded whatever the size: the pauses, then the largest moves by money; every row of
    # the plan stays in DuckDB (rebalance_plans).
    every = plan.filter((pl.col("delta") != 0) | pl.col("pause"))
    moves = (
        every.with_columns(
            money=pl.when(pl.col("pause"))
            .then(pl.col("old_budget"))
            .otherwise(pl.col("delta").abs())
        )
        .sort(["pause", "money", "pool", "entity_id"], descending=[True, True, False, False])
        .head(MAX_TABLE_ROWS)
    )
    header = (
        f"**{plan_id}**: {changes} budget change(s) and {pauses} pause(s) over "
        f"{plan.height} budget holders; {held.height} fired trigger(s) moved no money."
    )
    if every.height > moves.height:
        header += (
            f" The {moves.height} largest by money are shown (pauses first); all "
            f"{every.height:,} are in DuckDB table rebalance_plans (plan_id = '{plan_id}')."
        )
    parts = [header, ""]
    if moves.height:
        table = money_columns(
            with_names(
                moves.select(
                    "entity_id",
                    "pool",
                    "action",
                    pl.col("old_budget").alias("old"),
                    pl.col("new_budget").alias("new"),
                    pl.col("delta").alias("change"),
                    pl.col("target_budget").alias("target"),
                    "reason",
                ),
                labels,
            ),
            ["old", "new", "change", "target"],
            currency,
            signed=("change",),
        )
        parts.append(markdown_table(table, max_rows=MAX_TABLE_ROWS))
    else:
        parts.append("No budget moves this cycle.")
    if held.height:
        parts += [
            "",
            "**Fired triggers that moved no money, and what held them**",
            "",
            markdown_table(with_names(held.head(MAX_TABLE_ROWS), labels), max_rows=MAX_TABLE_ROWS)
            + not_shown(held.height - MAX_TABLE_ROWS, "trigger_actions"),
        ]
    return "\n".join(parts)


def plan_metadata(
    plan: pl.DataFrame,
    plan_id: str,
    as_of: datetime,
    config: PoolsConfig,
    *,
    labels: pl.DataFrame,
    entities: pl.DataFrame,
    actions: pl.DataFrame,
    scores: pl.DataFrame,
    performance: pl.DataFrame,
    charts: Path,
) -> dict:
    """The plan's counts, its pools against their floors and ceilings, the moves and the held
    triggers by name, per-pool floats to plot, and a chart."""
    currency = config.currency
    pools = pool_table(plan, config)
    held = held_triggers(plan, actions, entities)
    moved = plan.filter(pl.col("delta") != 0)
    pools_md = money_columns(
        pools.select(
            "pool",
            "tier",
            "mode",
            "floor",
            "ceiling",
            "before",
            "after",
            (pl.col("after") - pl.col("before")).alias("change"),
            "moved",
            pl.format("{} %", "utilisation_pct").alias("utilisation"),
            "position",
        ),
        ["floor", "ceiling", "before", "after", "change", "moved"],
        currency,
        signed=("change",),
    )
    metadata: dict[str, object] = {
        "plan_id": plan_id,
        "as_of": str(as_of),
        "budget_holders": plan.height,
        "moves": moved.height,  # budget changes (pauses keep their budget: counted apart)
        "increases": int((plan["delta"] > 0).sum()),
        "decreases": int((plan["delta"] < 0).sum()),
        "pauses": int(plan["pause"].sum()),
        "triggers_held": held.height,
        "money_moved": money(int(moved["delta"].clip(lower_bound=0).sum()), currency),
        "conserved": bool(plan["new_budget"].sum() == plan["old_budget"].sum()),
        "per_pool": dg.MetadataValue.md(markdown_table(pools_md)),
        "moves_table": dg.MetadataValue.md(_moves_markdown(plan, held, labels, plan_id, currency)),
    }
    metadata.update(_pool_floats(pools, scores, performance, currency))
    if plan.height:
        metadata.update(_plan_chart(plan, pools, labels, plan_id, currency, charts))
    return metadata


def _pool_floats(
    pools: pl.DataFrame, scores: pl.DataFrame, performance: pl.DataFrame, currency: str
) -> dict[str, float]:
    """``<pool>/budget``, ``/spend``, ``/value``, ``/roas``, ``/money_moved`` (major units),
    ``/mean_score`` and ``/utilisation_pct``: plain floats, plotted by the UI."""
    mean = dict(
        scores.filter(pl.col("status") == "scored")
        .group_by("pool")
        .agg(pl.col("score").mean())
        .iter_rows()
    )
    perf = {row["pool"]: row for row in performance.iter_rows(named=True)}
    out: dict[str, float] = {}
    for row in pools.iter_rows(named=True):
        pool = row["pool"]
        p = perf.get(pool, {"spend": 0.0, "value": 0.0})
        spend, value = float(p["spend"] or 0.0), float(p["value"] or 0.0)
        out |= {
            f"{pool}/budget": to_major(row["after"], currency),
            f"{pool}/spend": round(spend, 2),
            f"{pool}/value": round(value, 2),
            f"{pool}/roas": round(value / spend, 3) if spend else 0.0,
            f"{pool}/money_moved": to_major(row["moved"], currency),
            f"{pool}/mean_score": round(float(mean.get(pool) or 0.0), 4),
            f"{pool}/utilisation_pct": float(row["utilisation_pct"] or 0.0),
        }
    return out


def _plan_chart(plan, pools, labels, plan_id: str, currency: str, directory: Path) -> dict:
    moves = (
        with_names(plan.filter(pl.col("delta") != 0).select("entity_id", "delta"), labels)
        .with_columns(size=pl.col("delta").abs())
        .sort("size", descending=True)
        .head(15)
        .sort("delta")
    )

    def draw(fig) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        names = pools["pool"].to_list()
        y = range(len(names))
        left.barh(y, [to_major(v, currency) for v in pools["ceiling"]], color="#eeeeee",
                  label="ceiling")  # fmt: skip
        left.barh(y, [to_major(v, currency) for v in pools["after"]], color="#4c72b0",
                  height=0.5, label="after")  # fmt: skip
        left.scatter([to_major(v, currency) for v in pools["before"]], list(y), color="black",
                     marker="|", s=200, label="before", zorder=3)  # fmt: skip
        left.scatter([to_major(v, currency) for v in pools["floor"]], list(y), color="#c44e52",
                     marker="|", s=200, label="floor", zorder=3)  # fmt: skip
        left.set_yticks(list(y), names)
        left.set_xlabel(f"daily budget ({currency})")
        left.set_title("pools: budget, floor, ceiling", fontsize=9)
        left.legend(fontsize=7, loc="lower right")
        if moves.height:
            labels_ = [
                (n or e)[:28] for n, e in zip(moves["name"], moves["entity_id"], strict=True)
            ]
            values = [to_major(v, currency) for v in moves["delta"]]
            right.barh(labels_, values, color=["#55a868" if v > 0 else "#c44e52" for v in values])
            right.axvline(0, color="black", linewidth=0.8)
            right.set_xlabel(f"change ({currency})")
            right.tick_params(axis="y", labelsize=7)
        else:
            right.text(0.5, 0.5, "no budget moves", ha="center", va="center")
            right.set_axis_off()
        right.set_title("moves by ad set", fontsize=9)

    return chart_metadata(
        draw, directory=directory / "rebalance_plan", stem=plan_id, title=f"Plan {plan_id}"
    )
