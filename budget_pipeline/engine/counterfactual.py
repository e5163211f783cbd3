"""Counterfactual plans: what a policy would have done, day by day, on the history (SPEC §9).

The policy takes over on the first day of a range from the budgets the account really had
that morning, and then plans every day from the budgets *its own* plan left the day before
(the would-have budgets), never from the real ones. Day D's plan is made at the end of the
evaluation interval that ends at D 00:00 (the daily cycle that runs just after midnight) and
holds for the whole of day D; it reads only Insights of hours before that moment:

- scores (:func:`~budget_pipeline.engine.scoring.score_entities`) and window metrics are
  computed for every evaluation point of the range in one DuckDB pass — each point's windows
  and baselines end at that point;
- the trigger state (:func:`~budget_pipeline.engine.triggers.evaluate_triggers`) is replayed
  point by point from an empty state, warmed up on the points before the range as a first
  run would be, so persistence and cooldowns are judged as they would have been then;
- the marginal policy's daily history (``response_curves.daily_performance``) is read per day
  up to that day's plan time;
- a holder with no Insights before a plan time was not delivering yet: it is left out of the
  policy's plan (``hold`` at its real budget) and joins from its real budget once it has data.

Everything else (the allocator, guards, Meta rules) is the engine's own
:func:`~budget_pipeline.engine.policy.plan_with_policies`, called once per day.

What the history cannot give back is left as it is: Insights are used as finally restated
(late conversions of the last three days before a plan were not all reported that morning —
the signals use attribution-matured estimates, so the difference is noise, not a bias), the
data itself comes from the real budgets (the would-have budgets would have bought other days),
and budgets and statuses changed outside the pipeline are known only as they are now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from itertools import pairwise

import duckdb
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.budget_history import CHANGES, DAY_BUDGETS
from budget_pipeline.engine.holders import budget_holders
from budget_pipeline.engine.meta_rules import MetaRule
from budget_pipeline.engine.policy import plan_with_policies
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.signals import entity_baselines, window_metrics
from budget_pipeline.engine.triggers import (
    evaluate_triggers,
    pending_evaluation_points,
    warmup_intervals,
)

# counterfactual_plans: the plan of every day (contracts.PLAN) with the would-have state.
PLANS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "as_of": pl.Datetime("us"),
    **contracts.PLAN,
    "active": pl.Boolean(),  # ACTIVE after the plan (False once the policy paused it)
    "real_budget": pl.Int64(),  # what the account really had that day
    "real_active": pl.Boolean(),
    "started_on": pl.Date(),  # the day the policy took over from the real budgets
}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def plan_times(days: Sequence[date], interval_hours: int) -> list[datetime]:
    """Each day's plan time: the last evaluation boundary at or before its 00:00."""
    out = []
    for day in days:
        points = pending_evaluation_points(
            midnight(day), midnight(day) - timedelta(hours=interval_hours), interval_hours, 1
        )
        out.append(points[-1] if points else midnight(day))
    return out


def score_points(
    days: Sequence[date], config: PoolsConfig
) -> tuple[list[datetime], list[datetime]]:
    """(every evaluation point to score, each day's plan time): the points from the warm-up
    before the first day's plan time through the last day's."""
    interval = config.settings.interval_hours
    plans = plan_times(days, interval)
    warmup = warmup_intervals(config)
    before = plans[0] - timedelta(hours=interval * warmup)
    return pending_evaluation_points(plans[-1], before, interval, warmup), plans


def replay_plans(
    con: duckdb.DuckDBPyConnection,
    entities: pl.DataFrame,
    real: pl.DataFrame,
    config: PoolsConfig,
    *,
    days: Sequence[date],
    window_hours: Sequence[int],
    rule_hours: Sequence[int] = (),
    daily: Callable[[datetime], pl.DataFrame] | None = None,
    first_seen: pl.DataFrame | None = None,
    rules: Mapping[str, MetaRule] | None = None,
    min_budgets: pl.DataFrame | None = None,
    scope: str = "counterfactual",
) -> pl.DataFrame:
    """The would-have plan of each of ``days`` (consecutive, oldest first): :data:`PLANS`.

    ``entities``: AD_ENTITIES (pools, types, names); ``real``: :data:`DAY_BUDGETS` for the
    days (the first day's budgets are where the policy starts, the rest is shown next to the
    plan); ``window_hours``: every window the scores and triggers read, ``rule_hours`` the Meta rules'; ``daily``: the
    marginal policy's history as of a plan time (``response_curves.daily_performance``);
    ``first_seen``: ``adset_id, first_ts`` (the first hour with Insights) — an entity seen
    after a plan time is left out of that plan.
    """
    days = list(days)
    if not days:
        return contracts.empty(PLANS)
    if any((b - a).days != 1 for a, b in pairwise(days)):
        raise ValueError(f"days must be consecutive, got {days[0]} .. {days[-1]} ({len(days)})")
    points, plans = score_points(days, config)
    windows = window_metrics(con, points, sorted({*window_hours, *rule_hours}))
    baselines = entity_baselines(con, points, settings=config.settings, entities=entities)
    scores = score_entities(windows, baselines, entities, config)
    composite = any(p.policy == "composite" for p in config.pools)
    marginal = any(p.policy == "marginal_return" for p in config.pools)
    if marginal and daily is None:
        raise ValueError("marginal_return pools need `daily` (response_curves data per day)")

    real = contracts.conform(real, DAY_BUDGETS)
    first = real.filter(pl.col("date") == days[0])
    state = first.select("entity_id", "daily_budget", "status")  # the would-have budgets
    seen = _first_seen(entities, first_seen)
    triggers = contracts.empty(contracts.TRIGGER_STATE)
    last_eval: datetime | None = None
    changed = contracts.empty(contracts.LAST_CHANGES)
    out = []
    for day, as_of in zip(days, plans, strict=True):
        actions = contracts.empty(contracts.ACTIONS)
        if composite:
            new = [p for p in points if (last_eval is None or p > last_eval) and p <= as_of]
            if new:
                at = scores.filter(pl.col("as_of").is_in(new))
                triggers, actions = evaluate_triggers(
                    at, windows.filter(pl.col("as_of").is_in(new)), triggers, config
                )
                actions = actions.filter(pl.col("as_of") == as_of)
                last_eval = new[-1]
        seen_by = entities.join(seen, on="entity_id", how="left").with_columns(
            present=pl.col("first_ts").is_not_null() & (pl.col("first_ts") < as_of)
        )
        # not delivering yet: it joins the would-have world at its real budget when it starts
        waiting = _with_budgets(
            seen_by.filter(~pl.col("present")), real.filter(pl.col("date") == day)
        )
        state = pl.concat(
            [
                state.join(waiting.select("entity_id"), on="entity_id", how="anti"),
                waiting.select("entity_id", "daily_budget", "status"),
            ]
        )
        today = _with_budgets(seen_by.filter(pl.col("present")), state)
        plan = plan_with_policies(
            today.drop("first_ts", "present"),
            scores.filter(pl.col("as_of") == as_of),
            actions,
            config,
            as_of=as_of,
            windows=windows.filter(
                pl.col("as_of") == as_of, pl.col("window_hours").is_in(list(rule_hours))
            ),
            daily=daily(as_of) if marginal and daily is not None else None,
            last_changes=changed,
            rules=rules,
            min_budgets=min_budgets,
            scope=f"{scope}:{day}",
        )
        plan = pl.concat([plan, _held(waiting, config, plan, as_of)])
        moved = plan.filter((pl.col("delta") != 0) | pl.col("pause"))
        changed = pl.concat(
            [
                changed.join(moved.select("entity_id"), on="entity_id", how="anti"),
                moved.select(
                    "entity_id",
                    changed_at=pl.lit(as_of, dtype=pl.Datetime("us")),
                    changes_last_hour=pl.lit(0, dtype=pl.Int64),
                ),
            ]
        )
        status = pl.concat([today, waiting], how="diagonal_relaxed").select("entity_id", "status")
        plan = plan.join(status, on="entity_id", how="left").with_columns(
            active=(pl.col("status") == "ACTIVE") & ~pl.col("pause")
        )
        after = plan.select(
            "entity_id",
            daily_budget=pl.col("new_budget"),
            status=pl.when(pl.col("active")).then(pl.lit("ACTIVE")).otherwise(pl.lit("PAUSED")),
        )
        state = pl.concat([state.join(after, on="entity_id", how="anti"), after])
        out.append(
            plan.drop("status").with_columns(
                date=pl.lit(day, dtype=pl.Date()), as_of=pl.lit(as_of, dtype=pl.Datetime("us"))
            )
        )
    plans_frame = pl.concat(out, how="diagonal_relaxed")
    return (
        plans_frame.join(
            real.select(
                "entity_id",
                "date",
                real_budget=pl.col("daily_budget"),
                real_active=pl.col("status") == "ACTIVE",
            ),
            on=["entity_id", "date"],
            how="left",
        )
        .with_columns(started_on=pl.lit(days[0], dtype=pl.Date()))
        .pipe(contracts.conform, PLANS)
        .sort("date", "pool", "entity_id")
    )


def _with_budgets(entities: pl.DataFrame, budgets: pl.DataFrame) -> pl.DataFrame:
    """``entities`` with the daily budget (daily-budget holders) and status of ``budgets``."""
    return (
        entities.join(
            budgets.select("entity_id", _b="daily_budget", _s="status"), on="entity_id", how="left"
        )
        .with_columns(
            daily_budget=pl.when(pl.col("budget_type") == "daily")
            .then(pl.coalesce("_b", "daily_budget"))
            .otherwise(pl.col("daily_budget")),
            status=pl.coalesce("_s", "status"),
        )
        .drop("_b", "_s")
    )


def _held(
    waiting: pl.DataFrame, config: PoolsConfig, plan: pl.DataFrame, as_of: datetime
) -> pl.DataFrame:
    """PLAN rows holding the budget holders among ``waiting`` (no Insights before ``as_of``)."""
    holders = budget_holders(waiting.drop("first_ts", "present"), config)
    plan_id = plan["plan_id"][0] if plan.height else f"plan-{as_of:%Y%m%d-%H%M}-none"
    return contracts.conform(
        holders.with_columns(
            plan_id=pl.lit(plan_id),
            new_budget=pl.col("old_budget"),
            delta=pl.lit(0, dtype=pl.Int64),
            target_budget=pl.col("old_budget"),
            pause=pl.lit(False),
            action=pl.lit("hold"),
            trigger=pl.lit(None, dtype=pl.Utf8),
            score=pl.lit(None, dtype=pl.Float64),
            reason=pl.lit(
                f"no Insights before {as_of:%Y-%m-%d %H:%M}: not delivering yet, left as it is"
            ),
        ),
        contracts.PLAN,
    )


def _first_seen(entities: pl.DataFrame, first_seen: pl.DataFrame | None) -> pl.DataFrame:
    """``entity_id, first_ts`` for ad sets and campaigns (a campaign: its first ad set's)."""
    if first_seen is None:
        return entities.select("entity_id", first_ts=pl.lit(datetime.min, dtype=pl.Datetime("us")))
    adsets = first_seen.select(pl.col("adset_id").alias("entity_id"), "first_ts")
    campaigns = (
        entities.filter(pl.col("entity_type") == "adset")
        .select(pl.col("entity_id").alias("adset_id"), "campaign_id")
        .join(first_seen, on="adset_id")
        .group_by("campaign_id")
        .agg(pl.col("first_ts").min())
        .rename({"campaign_id": "entity_id"})
    )
    return pl.concat([adsets, campaigns]).group_by("entity_id").agg(pl.col("first_ts").min())


def would_have_budgets(plans: pl.DataFrame) -> pl.DataFrame:
    """Per holder and day of :data:`PLANS`: the would-have budget and the real one in force
    (0 when paused), minor units: ``entity_id, date, pool, budget, real``."""
    return plans.select(
        "entity_id",
        "date",
        "pool",
        budget=pl.when(pl.col("active")).then(pl.col("new_budget")).otherwise(0),
        real=pl.when(pl.col("real_active")).then(pl.col("real_budget")).otherwise(0),
    )


def plan_changes(plans: pl.DataFrame) -> pl.DataFrame:
    """The would-have plans as account changes (:data:`CHANGES`): a holder's budget or status
    set at its plan time whenever it differs from the day before (the first day: from the
    real budget)."""
    frame = plans.sort("entity_id", "date").with_columns(
        prev_budget=pl.col("new_budget").shift(1).over("entity_id"),
        prev_active=pl.col("active").shift(1).over("entity_id"),
    )
    frame = frame.with_columns(
        budget_before=pl.coalesce("prev_budget", "real_budget"),
        was_active=pl.coalesce("prev_active", "real_active"),
    )
    status = pl.when(pl.col("active")).then(pl.lit("ACTIVE")).otherwise(pl.lit("PAUSED"))
    was = pl.when(pl.col("was_active")).then(pl.lit("ACTIVE")).otherwise(pl.lit("PAUSED"))
    budgets = frame.filter(pl.col("new_budget") != pl.col("budget_before")).select(
        "entity_id",
        at=pl.col("as_of"),
        budget_before="budget_before",
        budget_after="new_budget",
        status_before=pl.lit(None, dtype=pl.Utf8),
        status_after=pl.lit(None, dtype=pl.Utf8),
    )
    statuses = frame.filter(pl.col("active") != pl.col("was_active")).select(
        "entity_id",
        at=pl.col("as_of"),
        budget_before=pl.lit(None, dtype=pl.Int64),
        budget_after=pl.lit(None, dtype=pl.Int64),
        status_before=was,
        status_after=status,
    )
    return contracts.conform(pl.concat([budgets, statuses]).sort("at", "entity_id"), CHANGES)


def plan_summary(plans: pl.DataFrame) -> pl.DataFrame:
    """Per day and pool: ``edits`` (budget changes and pauses), ``moved`` (minor units added
    to the pool's holders that grew, which conservation matches with what others gave) and
    ``delta`` (the pool's net change)."""
    return (
        plans.group_by("date", "pool")
        .agg(
            edits=((pl.col("delta") != 0) | pl.col("pause")).sum().cast(pl.Int64),
            moved=pl.col("delta").clip(0, None).sum().cast(pl.Int64),
            delta=pl.col("delta").sum().cast(pl.Int64),
            budget=pl.when(pl.col("active")).then(pl.col("new_budget")).otherwise(0).sum(),
            real_budget=pl.when(pl.col("real_active"))
            .then(pl.col("real_budget"))
            .otherwise(0)
            .sum(),
        )
        .sort("date", "pool")
    )
