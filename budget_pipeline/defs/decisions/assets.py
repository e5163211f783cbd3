"""Decisions: composite scores, trigger states and the rebalance plan.

Each asset reads the warehouse, calls one engine function and writes its table; the
evaluation clock is the newest hour of Insights, so re-running on the same data changes
nothing (same scores, same streaks, same plan id). Between two evaluation points the scores and
the plan are kept, not recomputed, until their inputs change (see defs/evaluation_point).
"""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from budget_pipeline import db
from budget_pipeline.contracts import (
    ACTIONS,
    AD_ENTITIES,
    LAST_CHANGES,
    PLAN,
    SCORES,
    TRIGGER_STATE,
    conform,
    empty,
)
from budget_pipeline.defs.charts import charts_dir
from budget_pipeline.defs.constants import DECISIONS, DUCKDB_POOL
from budget_pipeline.defs.decisions.metadata import score_metadata, trigger_metadata
from budget_pipeline.defs.decisions.plan_metadata import plan_metadata, pool_performance
from budget_pipeline.defs.display import entity_labels
from budget_pipeline.defs.evaluation_point import (
    PLAN_ENTITY_COLUMNS,
    SCORE_ENTITY_COLUMNS,
    already_decided,
    decided,
    decision_inputs,
    record_decided,
)
from budget_pipeline.defs.extraction.assets import ad_entities
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.scope import ACCOUNT_METADATA
from budget_pipeline.defs.warehouse.assets import entity_baselines, stored_baselines
from budget_pipeline.engine.baselines import score_inputs as read_score_inputs
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.meta_rules import load_rule
from budget_pipeline.engine.policy import plan_with_policies
from budget_pipeline.engine.response_curves import daily_performance
from budget_pipeline.engine.rule_policy import rule_window_hours
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.signals import WINDOW_METRICS, window_metrics
from budget_pipeline.engine.triggers import (
    evaluate_triggers,
    pending_evaluation_points,
    trigger_windows,
    warmup_intervals,
)

# Days of history the response curves are fitted on (recency-weighted: see response_curves).
CURVE_DAYS = 56
# Names under which these assets record what they last computed (see evaluation_point).
SCORED, TRIGGERED, PLANNED = "composite_scores", "trigger_states", "rebalance_plan"


def _points_to_redo(con, scored: dict, last_eval) -> list[datetime]:
    """The points of the triggers' last advance when the scores at ``last_eval`` were computed
    again from other inputs since (that advance is undone and evaluated again); else []."""
    triggered = decided(con, TRIGGERED)
    if (
        triggered is None
        or not scored.get("as_of") == last_eval.isoformat() == triggered.get("as_of")
        or scored.get("inputs") == triggered.get("inputs")
    ):
        return []
    return _recorded_points(triggered)


def _read_state(con, statement: str = "select_trigger_states") -> pl.DataFrame:
    return conform(db.read(con, statement), TRIGGER_STATE)


def _as_json(points) -> str:
    return json.dumps([p.isoformat() for p in points])


def _recorded_points(stored: dict | None) -> list[datetime]:
    """The evaluation points an asset recorded with its last computation (see
    evaluation_point.record_decided)."""
    try:
        return [datetime.fromisoformat(p) for p in json.loads((stored or {}).get("result") or "[]")]
    except (TypeError, ValueError):
        return []


def windows_needed(config) -> list[int]:
    """Window lengths the scores and the compound triggers read."""
    windows = {48, 72, 96}
    if config.settings.lookback_hours:
        windows.add(config.settings.lookback_hours)
    for pool in config.pools:
        for trig in pool.triggers:
            windows.update(c.window_hours for c in trig.conditions)
    return sorted(windows)


def score_inputs(con, points, config, entities: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The window metrics and own baselines the scores read at ``points``
    (:func:`~budget_pipeline.engine.baselines.score_inputs`): the baselines the
    ``entity_baselines`` asset stored where they are current (:func:`stored_baselines`),
    else computed."""
    windows, baselines, _ = _score_inputs(con, points, config, entities)
    return windows, baselines


def _score_inputs(con, points, config, entities) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """:func:`score_inputs` and whether the baselines were the stored ones."""
    settings = config.settings
    reused: list[bool] = []

    def stored(cursor) -> pl.DataFrame | None:
        frame = stored_baselines(cursor, points, settings, entities)
        reused.append(frame is not None)
        return frame

    windows, baselines = read_score_inputs(
        con, points, settings, windows_needed(config), entities, stored=stored
    )
    return windows, baselines, bool(reused and reused[0])


@dg.asset(
    group_name=DECISIONS,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    deps=[entity_baselines, ad_entities],
    description=(
        "Composite score per ad set (and CBO campaign) at each new evaluation interval: "
        "ROAS, CPA, frequency risk and engagement against the entity's own baseline, weighted "
        "per pool; 0.5 = on baseline; insufficient_data entities are never moved. The "
        "baselines are those entity_baselines stored at the point when they come from the same "
        "inputs (metadata `baselines`), else computed."
    ),
)
def composite_scores(
    context: dg.AssetExecutionContext, warehouse: Warehouse, pools: PoolsResource
) -> dg.MaterializeResult:
    config = pools.load()
    settings = config.settings
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        state = _read_state(con)
        last_eval = state["last_eval_at"].max() if state.height else None
        points = pending_evaluation_points(
            as_of, last_eval, settings.interval_hours, warmup_intervals(config)
        ) or [last_eval or as_of]
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        inputs = decision_inputs(con, points[-1], config, entities.select(SCORE_ENTITY_COLUMNS))
        if points == [last_eval]:
            if already_decided(con, SCORED, last_eval, inputs) is not None:
                context.log.info(f"no new evaluation point since {last_eval}: scores kept")
                scores = conform(
                    db.read(con, "select_composite_scores_at", {"as_of": points}), SCORES
                )
                metadata = score_metadata(scores, entity_labels(entities), config.currency)
                return dg.MaterializeResult(
                    metadata={"evaluation_points": 0, "recomputed": False, **metadata}
                )
            # the inputs of the last advance changed: score all of its points again (the
            # triggers evaluate them again from the state before it, see trigger_states)
            stored = decided(con, SCORED) or {}
            if stored.get("as_of") == last_eval.isoformat():
                points = _recorded_points(stored) or points
        context.log.info(f"scoring {len(points)} evaluation point(s): {points[0]} .. {points[-1]}")
        windows, baselines, reused = _score_inputs(con, points, config, entities)
        if reused:
            context.log.info(f"scored on the baselines entity_baselines stored at {points[0]}")
        scores = score_entities(windows, baselines, entities, config)
        db.replace(
            con,
            scores,
            delete="delete_composite_scores_at",
            insert="insert_composite_scores",
            staged_as="staged_composite_scores",
            params={"as_of": points},
        )
        record_decided(con, SCORED, points[-1], inputs, _as_json(points))
    metadata = score_metadata(scores, entity_labels(entities), config.currency)
    return dg.MaterializeResult(
        metadata={
            "evaluation_points": len(points),
            "recomputed": True,
            "baselines": "stored by entity_baselines" if reused else "computed",
            **metadata,
        }
    )


@dg.asset(
    group_name=DECISIONS,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    deps=[composite_scores],
    description=(
        "Per entity and trigger: how many consecutive intervals its condition held, when it "
        "last fired and its cooldown; carried across runs. Writes the actions fired at the "
        "newest interval to `trigger_actions`."
    ),
)
def trigger_states(
    context: dg.AssetExecutionContext, warehouse: Warehouse, pools: PoolsResource
) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        state = _read_state(con)
        last_eval = state["last_eval_at"].max() if state.height else None
        latest_scored = db.scalar(con, "select_latest_score_time")
        if latest_scored is None:
            raise RuntimeError("composite_scores is empty: materialize composite_scores first")
        points = pending_evaluation_points(
            latest_scored, last_eval, config.settings.interval_hours, warmup_intervals(config)
        )
        scored = decided(con, SCORED) or {}
        redo = [] if points or last_eval is None else _points_to_redo(con, scored, last_eval)
        if redo:  # undo the last advance and evaluate its points on their new scores
            points = redo
            state = _read_state(con, "select_trigger_states_prior")
            context.log.info(f"scores at {points[0]} .. {points[-1]} changed: evaluated again")
        if points:
            scores = conform(db.read(con, "select_composite_scores_at", {"as_of": points}), SCORES)
            # only the compound triggers read raw windows (none: no query)
            needed = trigger_windows(config)
            windows = window_metrics(con, points, needed) if needed else empty(WINDOW_METRICS)
            new_state, actions = evaluate_triggers(scores, windows, state, config)
            actions = conform(actions, ACTIONS)
            with db.transaction(con):
                if not redo:
                    db.run(con, "delete_trigger_states_prior")
                    db.run(con, "insert_trigger_states_prior")
                with db.staged(con, "staged_trigger_states", conform(new_state, TRIGGER_STATE)):
                    db.run(con, "delete_trigger_states")
                    db.run(con, "insert_trigger_states")
                with db.staged(con, "staged_trigger_actions", actions):
                    db.run(con, "delete_trigger_actions_at", {"as_of": points})
                    db.run(con, "insert_trigger_actions")
                record_decided(
                    con, TRIGGERED, points[-1], scored.get("inputs", ""), _as_json(points)
                )
        else:
            context.log.info(f"no new evaluation interval since {last_eval}: state unchanged")
            new_state = state
            actions = conform(
                db.read(con, "select_trigger_actions_at", {"as_of": last_eval}), ACTIONS
            )
    return dg.MaterializeResult(
        metadata=trigger_metadata(
            actions,
            new_state,
            entity_labels(entities),
            entities.select("entity_id", "pool"),
            new_intervals=len(points),
            as_of=points[-1] if points else last_eval,
        )
    )


@dg.asset(
    group_name=DECISIONS,
    kinds={"polars", "duckdb"},
    pool=DUCKDB_POOL,
    deps=[trigger_states, ad_entities],
    description=(
        "The rebalance plan: one row per budget holder in a pool, integer minor units, within "
        "pool floors/ceilings, the learning cap and minimum intervals, conserving money to the "
        "cent; each move with its reason. Stable plan id for identical inputs."
    ),
)
def rebalance_plan(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    pools: PoolsResource,
    account: AdAccount,
) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        as_of = db.scalar(con, "select_latest_score_time")
        if as_of is None:
            raise RuntimeError("composite_scores is empty: materialize composite_scores first")
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        scores = conform(db.read(con, "select_composite_scores_at", {"as_of": [as_of]}), SCORES)
        actions = conform(db.read(con, "select_trigger_actions_at", {"as_of": as_of}), ACTIONS)
        last_changes = conform(
            db.read(con, "select_last_changes", {"as_of": as_of, "plan_id": None}), LAST_CHANGES
        )
        unfinished = db.read(con, "select_unfinished_plans")
        held_pools = {
            pool: f"plan {row['plan_id']} is still being finished in this pool "
            f"({row['open_steps']} step(s) open): no new move until it completes or rolls back"
            for row in unfinished.iter_rows(named=True)
            for pool in row["pools"]
        }
        rules = pool_rules(pools.path, config)
        mins = min_budgets(con, config, entities)
        in_learning = db.read(con, "select_learning_stages")
        inputs = decision_inputs(
            con,
            as_of,
            config,
            {name: repr(rule) for name, rule in sorted(rules.items())},
            entities.select(PLAN_ENTITY_COLUMNS),
            scores,
            actions,
            last_changes,
            unfinished,
            in_learning,
            mins,
        )
        kept = already_decided(con, PLANNED, as_of, inputs)
        plan = (
            conform(db.read(con, "select_rebalance_plan", {"plan_id": kept}), PLAN)
            if kept
            else None
        )
        recomputed = plan is None or plan.height == 0
        if not recomputed:
            context.log.info(f"no new evaluation point since {as_of}: plan {kept} kept")
            plan_id = kept
        else:
            needed = sorted({h for rule in rules.values() for h in rule_window_hours(rule)})
            windows = window_metrics(con, [as_of], needed) if rules else empty(WINDOW_METRICS)
            marginal = any(p.policy == "marginal_return" for p in config.pools)
            db.run(con, "insert_warehouse_id", {"id": uuid.uuid4().hex})
            plan = plan_with_policies(
                entities,
                scores,
                actions,
                config,
                as_of=as_of,
                windows=windows,
                daily=daily_performance(con, as_of, CURVE_DAYS) if marginal else None,
                last_changes=last_changes,
                rules=rules,
                min_budgets=mins,
                in_learning=in_learning,
                held_pools=held_pools,
                scope=db.scalar(con, "select_warehouse_id"),
            )
            plan_id = plan["plan_id"][0] if plan.height else f"plan-empty-{as_of:%Y%m%d-%H%M}"
            stored = plan.with_columns(
                as_of=pl.lit(as_of), created_at=pl.lit(datetime.now(UTC).replace(tzinfo=None))
            )
            db.replace(
                con,
                stored,
                delete="delete_rebalance_plan",
                insert="insert_rebalance_plan",
                staged_as="staged_rebalance_plan",
                params={"plan_id": plan_id},
            )
            record_decided(con, PLANNED, as_of, inputs, plan_id if plan.height else "")
        performance = pool_performance(con, as_of, config.settings.interval_hours)
    metadata = plan_metadata(
        plan,
        plan_id,
        as_of,
        config,
        labels=entity_labels(entities),
        entities=entities,
        actions=actions,
        scores=scores,
        performance=performance,
        charts=charts_dir(warehouse.database),
    )
    metadata["recomputed"] = recomputed  # False: nothing new since the plan was made
    # The execution gate finishes these (it reads this list from the event log).
    metadata["unfinished_plans"] = dg.MetadataValue.json(unfinished["plan_id"].to_list())
    # Whose plan this is: accounts sharing one Dagster instance look up only their own.
    metadata[ACCOUNT_METADATA] = account.account_id
    return dg.MaterializeResult(metadata=metadata)


def pool_rules(pools_path: str, config) -> dict:
    """The Meta rule of each pool whose policy is ``meta_rule``; a relative path is read
    next to the pools file."""
    rules = {}
    for pool in config.pools:
        if pool.policy == "meta_rule":
            path = Path(pool.meta_rule)
            if not path.is_absolute():
                path = Path(pools_path).parent / path
            rules[pool.name] = load_rule(path)
    return rules


def min_budget_minor(con, config) -> int:
    """The stricter of the configured minimum and Meta's own for this account (if read)."""
    meta = db.scalar(con, "select_account_min_daily_budget", {"currency": config.currency})
    return max(config.min_adset_budget_minor, int(meta or 0))


def min_budgets(con, config, entities: pl.DataFrame) -> pl.DataFrame:
    return entities.select("entity_id").with_columns(
        min_budget=pl.lit(min_budget_minor(con, config), dtype=pl.Int64)
    )
