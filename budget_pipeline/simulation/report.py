"""A simulation's outputs: the ``--json`` object, a markdown report and a chart."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from budget_pipeline.money import minor_factor
from budget_pipeline.simulation.evaluate import Simulation


def _money(value: float) -> float:
    return round(float(value), 2)


def per_day(run_value, currency: str) -> list[dict]:
    """Per date, per pool: budget (daily budgets at 00:00), spend and value, major units."""
    factor = minor_factor(currency)
    out = []
    for date, rows in run_value.per_day.sort("date", "pool").group_by("date", maintain_order=True):
        out.append(
            {
                "date": str(date[0]),
                "pools": {
                    r["pool"]: {
                        "budget": _money(r["budget_minor"] / factor),
                        "spend": _money(r["spend"]),
                        "value": _money(r["purchase_value"]),
                    }
                    for r in rows.iter_rows(named=True)
                },
            }
        )
    return out


def to_json(sim: Simulation, currency: str) -> dict:
    first = sim.runs[0]
    spend = sim.mean(lambda r: r.value.spend)
    share = sim.oracle_share
    return {
        "scenario": Path(sim.scenario).stem,
        "scenario_path": str(sim.scenario),
        "policy": sim.policy,
        "days": sim.days,
        "seeds": [r.seed for r in sim.runs],
        "currency": currency,
        "value": _money(sim.value),
        "spend": _money(spend),
        "roas": round(sim.value / spend, 4) if spend else 0.0,
        "static_value": _money(sim.static_value),
        "oracle_value": _money(sim.oracle_value),
        "uplift_vs_static": round(sim.uplift, 5),
        "oracle_uplift_vs_static": round(sim.oracle_uplift, 5),
        "oracle_share": round(share, 4) if share is not None else None,
        "edits": sim.mean(lambda r: r.edits),
        "learning_resets": sim.mean(lambda r: r.learning_resets),
        "pauses": sim.mean(lambda r: r.pauses),
        "guard_breaches": sim.mean(lambda r: len(r.guard_breaches)),
        "guard_breach_examples": first.guard_breaches[:5],
        "max_plans_per_pool_day": max(r.max_plans_per_pool_day for r in sim.runs),
        "per_seed": [
            {
                "seed": r.seed,
                "value": _money(r.value.value),
                "static_value": _money(r.static.value),
                "oracle_value": _money(r.oracle.value),
            }
            for r in sim.runs
        ],
        "per_day": per_day(first.value, currency),
        "changes": first.changes,
    }


def _series(run_value, what: str) -> pl.DataFrame:
    return run_value.per_day.group_by("date").agg(pl.col(what).sum()).sort("date")


def write_chart(sim: Simulation, path: Path, currency: str) -> Path:
    """Budgets per pool per day (the policy solid, the oracle dashed) and value per day
    (policy, static, oracle), for the first seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = sim.runs[0]
    factor = minor_factor(currency)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    for i, (pool, rows) in enumerate(run.value.per_day.sort("date").group_by("pool")):
        color = f"C{i}"
        top.plot(rows["date"], rows["budget_minor"] / factor, color=color, label=f"{pool[0]}")
        oracle = run.oracle.per_day.filter(pl.col("pool") == pool[0]).sort("date")
        top.plot(oracle["date"], oracle["budget_minor"] / factor, color=color, ls="--", lw=1)
    top.set_ylabel(f"daily budget ({currency})")
    top.set_title(
        f"{Path(sim.scenario).stem}: budgets per pool ({sim.policy} solid, oracle dashed)"
    )
    top.legend(loc="best", fontsize=8)
    for label, value, style in (
        (sim.policy, run.value, "-"),
        ("static", run.static, ":"),
        ("oracle", run.oracle, "--"),
    ):
        series = _series(value, "purchase_value")
        bottom.plot(series["date"], series["purchase_value"], ls=style, label=label)
    bottom.set_ylabel(f"purchase value per day ({currency})")
    bottom.set_title(
        f"value: {sim.policy} {sim.uplift:+.1%} vs static; oracle {sim.oracle_uplift:+.1%}"
    )
    bottom.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(sim: Simulation, out: Path, currency: str) -> Path:
    """``out/report.md`` and ``out/chart.png``."""
    out.mkdir(parents=True, exist_ok=True)
    chart = write_chart(sim, out / "chart.png", currency)
    data = to_json(sim, currency)
    share = data["oracle_share"]
    lines = [
        f"# {data['scenario']}: {sim.policy} over {sim.days} days",
        "",
        f"Seeds {', '.join(map(str, data['seeds']))} (common random numbers); value is the "
        "fully attributed purchase value of the simulated days, each policy's changes replayed "
        "in the seed's world with every purchase at its expectation (no purchase luck).",
        "",
        "| | value | vs static |",
        "|---|---:|---:|",
        f"| static budgets | {data['static_value']:,.2f} {currency} | |",
        f"| **{sim.policy}** | {data['value']:,.2f} {currency} | {sim.uplift:+.2%} |",
        f"| oracle | {data['oracle_value']:,.2f} {currency} | {sim.oracle_uplift:+.2%} |",
        "",
        f"Share of the oracle's uplift: {'n/a' if share is None else f'{share:.0%}'}. "
        f"Edits {data['edits']:.1f}, learning resets {data['learning_resets']:g}, pauses "
        f"{data['pauses']:g}, guard breaches {data['guard_breaches']:g}, at most "
        f"{data['max_plans_per_pool_day']} executed plan(s) with moves per pool per day.",
        "",
        f"![budgets and value per day]({chart.name})",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
