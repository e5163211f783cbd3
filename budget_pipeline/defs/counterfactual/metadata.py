"""What the counterfactual assets show: numbers per day (so the UI plots them over the
partitions), totals of the range, and tables a marketer reads (names next to ids, money in
major units with the currency)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from budget_pipeline.defs.charts import chart_metadata
from budget_pipeline.defs.display import money, money_major, signed_money, with_names
from budget_pipeline.engine.report import markdown_table
from budget_pipeline.money import minor_factor

MAX_ROWS = 25


def _major(minor: int | float | None, currency: str) -> float:
    return round(float(minor or 0) / minor_factor(currency), 2)


def plan_day_metadata(summary: pl.DataFrame, days: list[date], currency: str) -> dict[str, dict]:
    """Per partition key: that day's edits and money moved, in total and per pool."""
    out: dict[str, dict] = {}
    for day in days:
        rows = summary.filter(pl.col("date") == day)
        meta: dict = {
            "day": str(day),
            "planned": rows.height > 0,
            "edits": int(rows["edits"].sum()),
            "money_moved": _major(rows["moved"].sum(), currency),
        }
        for row in rows.iter_rows(named=True):
            meta[f"{row['pool']}/edits"] = int(row["edits"])
            meta[f"{row['pool']}/money_moved"] = _major(row["moved"], currency)
            meta[f"{row['pool']}/would_have_budget"] = _major(row["budget"], currency)
            meta[f"{row['pool']}/real_budget"] = _major(row["real_budget"], currency)
        out[str(day)] = meta
    return out


def plans_metadata(
    plans: pl.DataFrame,
    summary: pl.DataFrame,
    labels: pl.DataFrame,
    currency: str,
    policy: str,
) -> dict:
    """The range: edits, pauses and money moved per pool; where the would-have budgets ended
    against the real ones, holder by holder."""
    if plans.height == 0:
        return {"policy": policy, "days_planned": 0, "total_edits": 0, "total_money_moved": 0.0}
    last = plans.filter(pl.col("date") == plans["date"].max())
    pools = (
        summary.group_by("pool")
        .agg(pl.col("edits").sum(), pl.col("moved").sum())
        .join(plans.group_by("pool").agg(pauses=pl.col("pause").sum().cast(pl.Int64)), on="pool")
        .join(
            last.group_by("pool").agg(
                real=pl.when(pl.col("real_active")).then(pl.col("real_budget")).otherwise(0).sum(),
                would=pl.when(pl.col("active")).then(pl.col("new_budget")).otherwise(0).sum(),
            ),
            on="pool",
        )
        .sort("pool")
    )
    pool_table = pl.DataFrame(
        {
            "pool": pools["pool"],
            "edits": pools["edits"],
            "pauses": pools["pauses"],
            "money moved": [money(v, currency) for v in pools["moved"].to_list()],
            "real budget (last day)": [money(v, currency) for v in pools["real"].to_list()],
            "would-have budget": [money(v, currency) for v in pools["would"].to_list()],
        }
    )
    ends = (
        last.with_columns(
            would=pl.when(pl.col("active")).then(pl.col("new_budget")).otherwise(0),
            real=pl.when(pl.col("real_active")).then(pl.col("real_budget")).otherwise(0),
        )
        .with_columns(change=pl.col("would") - pl.col("real"))
        .filter(pl.col("change") != 0)
        .sort(pl.col("change").abs(), descending=True)
        .head(MAX_ROWS)
    )
    holder_table = with_names(ends.select("entity_id", "pool", "real", "would", "change"), labels)
    holder_table = holder_table.with_columns(
        pl.Series("real", [money(v, currency) for v in ends["real"].to_list()], dtype=pl.Utf8),
        pl.Series("would", [money(v, currency) for v in ends["would"].to_list()], dtype=pl.Utf8),
        pl.Series(
            "change", [signed_money(v, currency) for v in ends["change"].to_list()], dtype=pl.Utf8
        ),
    ).rename({"real": "real budget", "would": "would-have budget"})
    meta: dict = {
        "policy": policy,
        "started_on": str(plans["started_on"].min()),
        "days_planned": int(plans["date"].n_unique()),
        "total_edits": int(summary["edits"].sum()),
        "total_pauses": int(plans["pause"].sum()),
        "total_money_moved": _major(summary["moved"].sum(), currency),
        "pools": dg.MetadataValue.md(markdown_table(pool_table)),
        "holders_on_the_last_day": dg.MetadataValue.md(
            markdown_table(holder_table, max_rows=MAX_ROWS)
            if holder_table.height
            else "_every would-have budget equals the real one on the last day_"
        ),
    }
    for row in pools.iter_rows(named=True):
        meta[f"{row['pool']}/total_edits"] = int(row["edits"])
        meta[f"{row['pool']}/total_money_moved"] = _major(row["moved"], currency)
    return meta


def outcome_day_metadata(headline: pl.DataFrame, days: list[date]) -> dict[str, dict]:
    """Per partition key: that day's value difference and interval, in total and per pool."""
    out: dict[str, dict] = {}
    for day in days:
        rows = headline.filter(pl.col("date") == day)
        meta: dict = {"day": str(day), "evaluated": rows.height > 0}
        if rows.height:
            meta |= {
                "method": str(rows["method"][0]),
                "value_difference": round(float(rows["value_difference"].sum()), 2),
                "real_value": round(float(rows["real_value"].sum()), 2),
                "would_have_value": round(float(rows["would_have_value"].sum()), 2),
                "money_moved": round(float(rows["money_moved"].sum()), 2),
                "edits": int(rows["edits"].sum()),
            }
            for row in rows.iter_rows(named=True):
                pool = row["pool"]
                meta[f"{pool}/value_difference"] = round(row["value_difference"], 2)
                meta[f"{pool}/difference_low"] = round(row["difference_low"], 2)
                meta[f"{pool}/difference_high"] = round(row["difference_high"], 2)
        out[str(day)] = meta
    return out


def outcomes_metadata(
    stored: pl.DataFrame,
    totals: dict[str, pl.DataFrame],
    method: str,
    summary: pl.DataFrame,
    currency: str,
    *,
    charts: Path,
    days: tuple[date, date],
) -> dict:
    """Totals of the range per pool with the interval, the estimate next to the truth on the
    simulated account (and how often the truth fell in the estimate's interval), a chart."""
    head = totals[method]
    everything = head.filter(pl.col("pool") == "all").row(0, named=True)
    pools = head.filter(pl.col("pool") != "all").sort("pool")
    moved = summary.group_by("pool").agg(pl.col("edits").sum(), pl.col("moved").sum())
    table = pools.join(moved, on="pool", how="left").with_columns(pl.col("edits").fill_null(0))
    rows = [*table.iter_rows(named=True), {**everything, "edits": None, "moved": None}]
    md = pl.DataFrame(
        {
            "pool": [r["pool"] for r in rows],
            "real value": [money_major(r["real_value"], currency) for r in rows],
            "would-have value": [money_major(r["would_have_value"], currency) for r in rows],
            "difference": [_signed(r["value_difference"], currency) for r in rows],
            f"{0.9:.0%} interval": [
                f"{_signed(r['difference_low'], currency)} .. {_signed(r['difference_high'], currency)}"
                for r in rows
            ],
            "edits": ["" if r["edits"] is None else str(r["edits"]) for r in rows],
            "money moved": [
                "" if r["moved"] is None else money(r["moved"], currency) for r in rows
            ],
        }
    )
    real = float(everything["real_value"])
    meta: dict = {
        "method": method,
        "days": f"{days[0]} .. {days[1]}",
        "interval": str(stored.filter(pl.col("method") == method)["interval"][0]),
        "total_value_difference": round(float(everything["value_difference"]), 2),
        "total_difference_low": round(float(everything["difference_low"]), 2),
        "total_difference_high": round(float(everything["difference_high"]), 2),
        "total_real_value": round(real, 2),
        "total_would_have_value": round(float(everything["would_have_value"]), 2),
        "uplift_pct": round(100 * float(everything["value_difference"]) / real, 3) if real else 0.0,
        "total_edits": int(summary["edits"].sum()),
        "total_money_moved": _major(summary["moved"].sum(), currency),
        "outcomes": dg.MetadataValue.md(markdown_table(md)),
    }
    for row in pools.iter_rows(named=True):
        meta[f"{row['pool']}/total_value_difference"] = round(row["value_difference"], 2)
    if method != "response_curves":
        meta |= _estimate_check(stored, totals["response_curves"], method)
    meta |= chart_metadata(
        lambda fig: _draw(fig, stored, method, currency),
        directory=charts,
        stem="counterfactual_outcomes",
        title="Would-have minus real value, cumulative",
    )
    return meta


def _estimate_check(stored: pl.DataFrame, curve_totals: pl.DataFrame, truth: str) -> dict:
    """How the curve estimate (what the API path gives) compares with the truth: the share of
    pool-days whose budgets differed where the truth fell inside the estimate's interval."""
    both = stored.filter(pl.col("method") == truth).join(
        stored.filter(pl.col("method") == "response_curves"),
        on=["date", "pool"],
        suffix="_est",
    )
    changed = both.filter(pl.col("difference_low_est") < pl.col("difference_high_est"))
    inside = (pl.col("value_difference") >= pl.col("difference_low_est")) & (
        pl.col("value_difference") <= pl.col("difference_high_est")
    )
    everything = curve_totals.filter(pl.col("pool") == "all").row(0, named=True)
    return {
        "curve_estimate_total_difference": round(float(everything["value_difference"]), 2),
        "curve_estimate_total_low": round(float(everything["difference_low"]), 2),
        "curve_estimate_total_high": round(float(everything["difference_high"]), 2),
        "curve_interval_pool_days": changed.height,
        "curve_interval_coverage": round(float(changed.select(inside.mean()).item() or 0.0), 3)
        if changed.height
        else 1.0,
    }


def _signed(major: float, currency: str) -> str:
    text = money_major(major, currency)
    return f"+{text}" if major > 0 else text


def _draw(fig, stored: pl.DataFrame, method: str, currency: str) -> None:
    ax = fig.add_subplot(1, 1, 1)
    for name, style in ((method, "-"), ("response_curves", "--")):
        rows = (
            stored.filter(pl.col("method") == name)
            .group_by("date")
            .agg(pl.col("value_difference").sum())
            .sort("date")
        )
        if rows.height and (name == method or method != "response_curves"):
            label = "simulator truth" if name == "simulator" else "response-curve estimate"
            ax.plot(
                rows["date"].to_list(),
                rows["value_difference"].cum_sum().to_list(),
                style,
                label=label,
            )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel(f"value difference ({currency})")
    ax.legend(loc="best", fontsize=8)
