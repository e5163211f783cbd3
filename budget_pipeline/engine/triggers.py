"""Triggers: conditions with persistence and cooldown, carried across runs (SPEC §4).

Every pool has three score triggers from :class:`~budget_pipeline.config.pools.ScoreThresholds`
(``score_above_<x>`` → increase, ``score_below_<x>`` → decrease, ``score_below_<y>`` →
pause + alert) and its own :class:`~budget_pipeline.config.pools.CompoundTrigger` list on raw
metrics. Per (entity, trigger) the state (contracts.TRIGGER_STATE) counts the consecutive
evaluation points at which the condition held. A trigger fires when that streak reaches its
persistence outside its cooldown; firing resets the streak and starts the cooldown
(the trigger's ``cooldown_hours``, else ``Settings.cooldown_hours``).

Rules worth knowing:

- A streak continues only from the evaluation point one interval (``Settings.interval_hours``)
  earlier; an entity missing from a point's scores is not evaluated there, so its streak
  restarts when it comes back.
- Points at or before a state row's ``last_eval_at`` are ignored, so a rerun with the same
  points changes nothing and never counts an interval twice.
- ``insufficient_data`` entities never fire any trigger (SPEC §3: never moved): their
  conditions count as not met and their streaks reset.
- A missing metric (no spend, no window row) makes a comparison false; ``cpa`` is +inf with
  spend and no conversion, so ``cpa > x`` holds then.
- Every trigger firing at a point produces its rows (a pause and a decrease can fire
  together); the planner decides precedence.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from budget_pipeline.config.pools import Pool, PoolsConfig
from budget_pipeline.contracts import ACTIONS, SCORES, TRIGGER_STATE, conform
from budget_pipeline.engine.signals import entity_windows, raw_metrics

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_KEYS = ["entity_id", "trigger"]


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of one pool, as the state machine sees it."""

    pool: str
    name: str
    persistence: int
    cooldown_hours: float
    actions: tuple[tuple[str, float | None], ...]  # (action, pct) rows emitted on firing


def _score_specs(pool: Pool, cooldown_hours: float) -> list[TriggerSpec]:
    t = pool.thresholds
    pause_name = f"score_below_{t.pause_below:g}"
    if t.pause_below == t.decrease_below:
        pause_name += "_pause"
    return [
        TriggerSpec(
            pool.name,
            f"score_above_{t.increase_above:g}",
            t.increase_persistence,
            cooldown_hours,
            (("increase", t.increase_pct),),
        ),
        TriggerSpec(
            pool.name,
            f"score_below_{t.decrease_below:g}",
            t.decrease_persistence,
            cooldown_hours,
            (("decrease", t.decrease_pct),),
        ),
        TriggerSpec(
            pool.name,
            pause_name,
            t.pause_persistence,
            cooldown_hours,
            (("pause", None), ("alert", None)),
        ),
    ]


def trigger_specs(config: PoolsConfig) -> list[TriggerSpec]:
    """All triggers of all pools: the three score triggers, then the compound ones."""
    default_cooldown = config.settings.cooldown_hours
    specs: list[TriggerSpec] = []
    for pool in config.pools:
        pool_specs = _score_specs(pool, default_cooldown)
        for trig in pool.triggers:
            actions: list[tuple[str, float | None]] = [
                (trig.action, trig.pct if trig.action in ("increase", "decrease") else None)
            ]
            if trig.action == "pause":
                actions.append(("alert", None))
            if trig.flag_creative_review and trig.action != "flag_creative":
                actions.append(("flag_creative", None))
            cooldown = default_cooldown if trig.cooldown_hours is None else trig.cooldown_hours
            pool_specs.append(
                TriggerSpec(pool.name, trig.name, trig.persistence, cooldown, tuple(actions))
            )
        names = [s.name for s in pool_specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool {pool.name!r}: trigger names must be unique, got {dupes}")
        specs += pool_specs
    return specs


def warmup_intervals(config: PoolsConfig) -> int:
    """The largest persistence of any trigger: how many past points a first run evaluates."""
    return max(s.persistence for s in trigger_specs(config))


def trigger_windows(config: PoolsConfig) -> list[int]:
    """Window lengths (hours) the compound triggers read; window_metrics must include them."""
    return sorted({c.window_hours for p in config.pools for t in p.triggers for c in t.conditions})


def pending_evaluation_points(
    now: datetime, last_eval_at: datetime | None, interval_hours: int, warmup: int
) -> list[datetime]:
    """Interval boundaries not yet evaluated, oldest first.

    Boundaries are whole multiples of ``interval_hours`` counted from a midnight (1970-01-01,
    so for intervals that divide 24 h: midnight + n × interval every day). Returns those in
    ``(last_eval_at, now]``; with no state, the last ``warmup`` boundaries up to ``now`` so
    persistence is judged from history on the first run. Same ``now`` and state → ``[]``.
    """
    if interval_hours < 1:
        raise ValueError(f"interval_hours must be >= 1, got {interval_hours}")
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1, got {warmup}")
    step = timedelta(hours=interval_hours)
    origin = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    latest = origin + ((now - origin) // step) * step
    if last_eval_at is None:
        return [latest - i * step for i in range(warmup - 1, -1, -1)]
    first = origin + ((last_eval_at - origin) // step + 1) * step
    count = max(0, (latest - first) // step + 1)
    return [first + i * step for i in range(count)]


def _actions_frame(specs: list[TriggerSpec]) -> pl.DataFrame:
    rows = [
        (s.pool, s.name, i, action, pct) for s in specs for i, (action, pct) in enumerate(s.actions)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "pool": pl.Utf8(),
            "trigger": pl.Utf8(),
            "order": pl.Int64(),
            "action": pl.Utf8(),
            "pct": pl.Float64(),
        },
        orient="row",
    )


def _metrics(scores: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Raw metrics per entity, point and window length (CBO campaigns as their ad sets' sums)."""
    campaigns = scores.filter(pl.col("entity_type") == "campaign")["entity_id"].unique()
    return (
        entity_windows(windows, campaigns.to_list())
        .with_columns(*raw_metrics(), value=pl.col("purchase_value"))
        .select(
            "entity_id",
            "entity_type",
            "as_of",
            "window_hours",
            "roas",
            "cpa",
            "spend",
            "frequency",
            "ctr",
            "conversions",
            "value",
            "cpm",
        )
    )


def _conditions(
    scores: pl.DataFrame, windows: pl.DataFrame, config: PoolsConfig, specs: list[TriggerSpec]
) -> pl.DataFrame:
    """Whether each trigger's condition holds, per entity and point (before persistence),
    with the trigger's persistence and cooldown (of ``specs``: :func:`trigger_specs`)."""
    spec_of = {(s.pool, s.name): s for s in specs}
    keys = ["entity_id", "entity_type", "as_of"]
    metrics = _metrics(scores, windows) if any(p.triggers for p in config.pools) else None
    frames = []
    for pool in config.pools:
        rows = scores.filter(pl.col("pool") == pool.name).select(
            *keys,
            "score",
            "pool",
            scored=pl.col("status") == "scored",
            z=pl.col("evidence_z").fill_null(0.0),
        )
        if rows.height == 0:
            continue
        t = pool.thresholds
        score_specs = _score_specs(pool, config.settings.cooldown_hours)
        # A threshold acts only on a deviation the purchase count makes credible (issue 9):
        # an entity on its own baseline holds, whatever a noisy score says.
        up, down = pl.col("z") >= t.credible_z, pl.col("z") <= -t.credible_z
        score_conditions = [
            (pl.col("score") > t.increase_above) & up,
            (pl.col("score") < t.decrease_below) & down,
            (pl.col("score") < t.pause_below) & down,
        ]
        for spec, condition in zip(score_specs, score_conditions, strict=True):
            frames.append(
                rows.with_columns(
                    trigger=pl.lit(spec.name),
                    met=(pl.col("scored") & condition).fill_null(False),
                    **_spec_columns(spec),
                )
            )
        for trig in pool.triggers:
            assert metrics is not None
            met = rows
            parts = []
            for i, cond in enumerate(trig.conditions):
                target = {"cpa": pool.cpa_target, "roas": pool.roas_target}.get(cond.metric)
                rhs = cond.value if cond.value is not None else cond.target_multiple * target
                part = metrics.filter(pl.col("window_hours") == cond.window_hours).select(
                    *keys, _OPS[cond.op](pl.col(cond.metric), rhs).alias(f"c{i}")
                )
                met = met.join(part, on=keys, how="left")
                parts.append(pl.col(f"c{i}").fill_null(False))
            longest = max(c.window_hours for c in trig.conditions)
            spend_ok = metrics.filter(pl.col("window_hours") == longest).select(
                *keys, spend_ok=pl.col("spend") >= trig.min_spend
            )
            combine = pl.all_horizontal(parts) if trig.all else pl.any_horizontal(parts)
            frames.append(
                met.join(spend_ok, on=keys, how="left").select(
                    *rows.columns,
                    trigger=pl.lit(trig.name),
                    met=(pl.col("scored") & combine & pl.col("spend_ok").fill_null(False)),
                    **_spec_columns(spec_of[pool.name, trig.name]),
                )
            )
    if not frames:
        return pl.DataFrame(
            schema={
                "entity_id": pl.Utf8(),
                "as_of": pl.Datetime("us"),
                "score": pl.Float64(),
                "pool": pl.Utf8(),
                "trigger": pl.Utf8(),
                "met": pl.Boolean(),
                "persistence": pl.Int64(),
                "cooldown_hours": pl.Float64(),
            }
        )
    return pl.concat(frames, how="diagonal_relaxed").select(
        "entity_id", "as_of", "score", "pool", "trigger", "met", "persistence", "cooldown_hours"
    )


def _spec_columns(spec: TriggerSpec) -> dict[str, pl.Expr]:
    return {
        "persistence": pl.lit(spec.persistence, dtype=pl.Int64),
        "cooldown_hours": pl.lit(float(spec.cooldown_hours), dtype=pl.Float64),
    }


def evaluate_triggers(
    scores: pl.DataFrame,
    windows: pl.DataFrame,
    state: pl.DataFrame,
    config: PoolsConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Advance every (entity, trigger) state through the new evaluation points, in time order.

    ``scores``: contracts.SCORES at one or more points; ``windows``: window_metrics output
    with every length in :func:`trigger_windows`; ``state``: contracts.TRIGGER_STATE from the
    last run (may be empty). Returns the new TRIGGER_STATE (rows not evaluated are carried
    over unchanged) and the ACTIONS fired at the latest ``as_of`` in ``scores``; triggers
    firing at earlier points (warm-up, catch-up) update the state only.
    """
    state, fired = _advance(scores, windows, state, config)
    specs = trigger_specs(config)
    if scores.height == 0 or fired.height == 0:
        return state, pl.DataFrame(schema=ACTIONS)
    latest = scores["as_of"].max()
    at_latest = scores.filter(pl.col("as_of") == latest).select("entity_id", "as_of", "score")
    actions = (
        fired.filter(pl.col("as_of") == latest)
        .join(_actions_frame(specs), on=["pool", "trigger"], how="inner")
        .join(at_latest, on=["entity_id", "as_of"], how="left")
        .sort("entity_id", "trigger", "order")
    )
    return state, conform(actions, ACTIONS)


def firing_history(
    scores: pl.DataFrame, windows: pl.DataFrame, state: pl.DataFrame, config: PoolsConfig
) -> pl.DataFrame:
    """Every action fired at every point of ``scores`` (not only the latest): entity_id,
    pool, trigger, as_of, action — e.g. to measure a fire rate over an observation phase."""
    _, fired = _advance(scores, windows, state, config)
    return fired.join(_actions_frame(trigger_specs(config)), on=["pool", "trigger"]).select(
        "entity_id", "pool", "trigger", "as_of", "action"
    )


def _with_state(conditions: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """``conditions`` left-joined with the ``state`` of their (entity, trigger); a first
    evaluation (no state) skips the join of two string keys."""
    if state.height:
        return conditions.join(state, on=_KEYS, how="left")
    carried = [c for c in state.columns if c not in _KEYS]
    return conditions.with_columns(pl.lit(None, dtype=state.schema[c]).alias(c) for c in carried)


def _advance(
    scores: pl.DataFrame, windows: pl.DataFrame, state: pl.DataFrame, config: PoolsConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The state after every point of ``scores``, and every (entity, trigger) firing."""
    scores = conform(scores, SCORES)
    state = conform(state, TRIGGER_STATE)
    conditions = _conditions(scores, windows, config, trigger_specs(config))
    interval = timedelta(hours=config.settings.interval_hours)
    fired = []
    for as_of in conditions["as_of"].unique().sort().to_list():
        now = pl.lit(as_of, dtype=pl.Datetime("us"))
        step = (
            _with_state(conditions.filter(pl.col("as_of") == as_of), state)
            .filter(pl.col("last_eval_at").is_null() | (pl.col("last_eval_at") < now))
            .with_columns(
                continues=(
                    pl.col("condition_met") & (pl.col("last_eval_at") >= pl.lit(as_of - interval))
                ).fill_null(False)
            )
            .with_columns(
                run=pl.when(pl.col("met"))
                .then(pl.when(pl.col("continues")).then(pl.col("streak")).otherwise(0) + 1)
                .otherwise(0)
            )
            .with_columns(
                fire=pl.col("met")
                & (pl.col("run") >= pl.col("persistence"))
                & ~(pl.col("cooldown_until") > now).fill_null(False)
            )
            .with_columns(
                streak=pl.when(pl.col("fire")).then(0).otherwise(pl.col("run")),
                condition_met=pl.col("met"),
                last_eval_at=now,
                last_fired_at=pl.when(pl.col("fire")).then(now).otherwise(pl.col("last_fired_at")),
                cooldown_until=pl.when(pl.col("fire"))
                .then(
                    now
                    + pl.duration(
                        microseconds=(pl.col("cooldown_hours") * 3.6e9).round().cast(pl.Int64)
                    )
                )
                .otherwise(pl.col("cooldown_until")),
            )
        )
        updated = conform(step, TRIGGER_STATE)
        if state.height:
            state = pl.concat([state.join(updated, on=_KEYS, how="anti"), updated])
        else:  # a first evaluation: nothing to carry over
            state = updated
        fired.append(step.filter(pl.col("fire")).select("entity_id", "pool", "trigger", "as_of"))

    state = state.sort(_KEYS)
    schema = {"entity_id": pl.Utf8, "pool": pl.Utf8, "trigger": pl.Utf8, "as_of": pl.Datetime("us")}
    return state, pl.concat(fired) if fired else pl.DataFrame(schema=schema)
