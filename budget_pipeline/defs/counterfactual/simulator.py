"""The simulated account's own answer: the would-have budgets replayed on the same world.

The simulator is deterministic given its seed and the changes applied, and a change never
rewrites the past. So the would-have world is a fresh account of the same scenario and seed
whose clock starts at the first would-have day, with the real changes up to then (and those of
entities no plan touched) and the would-have budgets from then on; the real world is the same
account with the real changes. Their fully attributed delivery, day by day, is the truth the
curve estimate is measured against. The interval: the same difference on ``seeds`` other
seeds (another draw of the days), its ``level`` quantiles.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl

from budget_pipeline.engine.budget_history import CHANGES
from budget_pipeline.engine.counterfactual import midnight
from budget_pipeline.engine.counterfactual_value import OUTCOMES, TOTALS
from budget_pipeline.sources.simulated import SimulatedAccount
from budget_pipeline.sources.simulated.replay import with_seed

METHOD = "simulator"


def initial_state(account: SimulatedAccount) -> pl.DataFrame:
    """``entity_id, daily_budget, status`` before any change (the scenario as written)."""
    return (
        SimulatedAccount(account.scenario).entities().select("entity_id", "daily_budget", "status")
    )


def real_changes(account: SimulatedAccount) -> pl.DataFrame:
    """The account's applied changes as ``entity_id, at, budget_after, status_after`` (daily
    budgets and statuses; for counterfactual.changes_from_start)."""
    rows = account.state()["changes"]
    return pl.DataFrame(
        {
            "entity_id": [c["entity_id"] for c in rows],
            "at": [datetime.fromisoformat(c["at"]) for c in rows],
            "budget_after": [c["value"] if c["field"] == "daily_budget" else None for c in rows],
            "status_after": [c["value"] if c["field"] == "status" else None for c in rows],
        },
        schema={
            "entity_id": pl.Utf8(),
            "at": pl.Datetime("us"),
            "budget_after": pl.Int64(),
            "status_after": pl.Utf8(),
        },
    )


def would_have_changes(
    account: SimulatedAccount, planned: set[str], first_day: date, plan_changes: pl.DataFrame
) -> list[dict]:
    """The real changes, minus those of planned holders after ``first_day`` 00:00, plus the
    would-have ones (``plan_changes``: counterfactual.CHANGES at each day's 00:00), in time
    order (a real change first where both fall on one hour)."""
    start = midnight(first_day)
    kept = [
        c
        for c in account.state()["changes"]
        if c["entity_id"] not in planned or datetime.fromisoformat(c["at"]) <= start
    ]
    ours = []
    for row in plan_changes.select(list(CHANGES)).iter_rows(named=True):
        if row["budget_after"] is not None:
            field, value = "daily_budget", int(row["budget_after"])
        else:
            field, value = "status", row["status_after"]
        ours.append(
            {
                "at": row["at"].isoformat(),
                "entity_id": row["entity_id"],
                "field": field,
                "value": value,
            }
        )
    merged = [(datetime.fromisoformat(c["at"]), 0, i, c) for i, c in enumerate(kept)]
    merged += [(datetime.fromisoformat(c["at"]), 1, i, c) for i, c in enumerate(ours)]
    return [c for *_, c in sorted(merged, key=lambda m: m[:3])]


def _pool_days(
    account: SimulatedAccount, changes: list[dict], first: date, last: date, seed: int
) -> pl.DataFrame:
    """Spend and value per ad set and day of ``first..last`` with ``changes`` on ``seed``."""
    scenario = account.scenario
    cut = min((first - scenario.start).days, scenario.days)
    world = with_seed(scenario.model_copy(update={"days": cut}), seed)
    state = {
        "version": 1,
        "seed": seed,
        "start": scenario.start.isoformat(),
        "now": account.now.isoformat(),
        "changes": changes,
    }
    return SimulatedAccount(world, state).delivery(first, last)


def simulator_outcomes(
    account: SimulatedAccount,
    changes: list[dict],
    adset_pools: pl.DataFrame,
    first: date,
    last: date,
    *,
    seeds: int = 10,
    level: float = 0.90,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per day and pool :data:`OUTCOMES`, per pool and ``all`` :data:`TOTALS`) of the
    would-have ``changes`` against the real ones, ``first..last`` (days that are over).

    ``adset_pools``: ``adset_id, pool`` (the pools file's assignment)."""
    if last >= account.now.date():
        raise ValueError(
            f"day {last} has not ended on the simulated account (clock {account.now}): "
            "its outcome is not known yet"
        )
    real = account.state()["changes"]
    seed0 = account.scenario.seed
    draws = [seed0, *(seed0 + 1000 + k for k in range(seeds))]
    per_seed = []
    for seed in draws:
        pair = []
        for world in (real, changes):
            frame = (
                _pool_days(account, world, first, last, seed)
                .drop("pool")
                .join(adset_pools, on="adset_id", how="inner")
            )
            pair.append(
                frame.group_by("date", "pool")
                .agg(pl.col("spend").sum(), pl.col("purchase_value").sum())
                .sort("date", "pool")
            )
        per_seed.append(
            pair[0]
            .rename({"spend": "real_spend", "purchase_value": "real_value"})
            .join(
                pair[1].rename({"spend": "would_have_spend", "purchase_value": "would_have_value"}),
                on=["date", "pool"],
                how="full",
                coalesce=True,
            )
            .fill_null(0.0)
            .sort("date", "pool")
        )
    truth = per_seed[0].with_columns(
        value_difference=pl.col("would_have_value") - pl.col("real_value")
    )
    per_day = _with_interval(truth, per_seed[1:], ["date", "pool"], level)
    totals = [_sum(f, ["pool"]) for f in per_seed]
    everything = [_sum(f.with_columns(pool=pl.lit("all")), ["pool"]) for f in per_seed]
    pool_totals = _with_interval(
        totals[0].with_columns(value_difference=pl.col("would_have_value") - pl.col("real_value")),
        totals[1:],
        ["pool"],
        level,
    )
    all_totals = _with_interval(
        everything[0].with_columns(
            value_difference=pl.col("would_have_value") - pl.col("real_value")
        ),
        everything[1:],
        ["pool"],
        level,
    )
    return (
        per_day.select(list(OUTCOMES)).cast(OUTCOMES),  # type: ignore[arg-type]
        pl.concat([pool_totals, all_totals]).select(list(TOTALS)).cast(TOTALS),  # type: ignore[arg-type]
    )


def _sum(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    cols = ["real_spend", "real_value", "would_have_spend", "would_have_value"]
    return frame.group_by(keys).agg(pl.col(cols).sum()).sort(keys)


def _with_interval(
    truth: pl.DataFrame, others: list[pl.DataFrame], keys: list[str], level: float
) -> pl.DataFrame:
    """``truth`` with ``difference_low/high``: the quantiles of the difference over ``others``
    (the truth alone when there are none)."""
    diffs = [truth["value_difference"].to_numpy()]
    for other in others:
        aligned = truth.select(keys).join(other, on=keys, how="left", maintain_order="left")
        diffs.append(
            (
                aligned["would_have_value"].fill_null(0.0) - aligned["real_value"].fill_null(0.0)
            ).to_numpy()
        )
    stack = np.stack(diffs[1:] if others else diffs, axis=1)
    lo, hi = np.quantile(stack, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return truth.with_columns(
        method=pl.lit(METHOD),
        difference_low=pl.Series(lo),
        difference_high=pl.Series(hi),
    )


def seeds_label(seeds: int, level: float) -> str:
    return (
        f"{level:.0%} range of the same difference on {seeds} other seeds"
        if seeds
        else "none (no other seeds)"
    )
