"""Calibrate each pool's score thresholds from its observation phase (SPEC §9, issue 9).

With nothing changing, a pool's triggers should fire 3–7 times a week (SPEC §9's healthy rate)
and a pause should never fire on noise. :func:`propose_thresholds` replays the real trigger
state machine (:func:`~budget_pipeline.engine.triggers.firing_history`: persistence,
cooldown, credibility) over the scores of the observation phase for a grid of candidate
thresholds taken from the pool's own score distribution and of credibility levels, and
proposes, per pool, the strictest ``credible_z`` that can reach the healthy band with the
``increase_above`` / ``decrease_below`` whose fire rates come closest to its middle (each side
alone toward half of it, fewer fires on a tie), and ``pause_below`` below every score the
phase saw (a pause never fires on noise). The
evidence — the distribution, the fire rate now and with the proposal — goes with it, for the
user to accept in the pools file.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import TRIGGER_STATE, empty
from budget_pipeline.engine.signals import WINDOW_METRICS
from budget_pipeline.engine.triggers import firing_history

HEALTHY = (3.0, 7.0)  # fires per pool per week (SPEC §9)
_QUANTILES = (0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50)
_CREDIBLE_Z = (1.645, 1.28, 0.84, 0.5)  # 90 %, 80 %, 60 %, 38 % intervals

CALIBRATION: dict[str, pl.DataType] = {
    "pool": pl.Utf8(),
    "entities": pl.Int64(),
    "evaluation_points": pl.Int64(),
    "weeks": pl.Float64(),
    "score_p05": pl.Float64(),
    "score_p50": pl.Float64(),
    "score_p95": pl.Float64(),
    "increase_above": pl.Float64(),  # current
    "decrease_below": pl.Float64(),
    "pause_below": pl.Float64(),
    "fires_per_week": pl.Float64(),  # with the current thresholds
    "pauses_per_week": pl.Float64(),
    "proposed_increase_above": pl.Float64(),
    "proposed_decrease_below": pl.Float64(),
    "proposed_pause_below": pl.Float64(),
    "credible_z": pl.Float64(),  # current
    "proposed_credible_z": pl.Float64(),
    "proposed_fires_per_week": pl.Float64(),
    "proposed_pauses_per_week": pl.Float64(),
    "healthy_now": pl.Boolean(),
}


def _fires(
    scores: pl.DataFrame, config: PoolsConfig, pool: str, weeks: float, only: str | None = None
) -> tuple[float, float]:
    """(money-moving fires, pauses) per week of ``pool``'s score triggers over ``scores``
    (``only``: count that action alone)."""
    trimmed = config.model_copy(
        update={
            "pools": [p.model_copy(update={"triggers": []}) for p in config.pools if p.name == pool]
        }
    )
    actions = firing_history(scores, empty(WINDOW_METRICS), empty(TRIGGER_STATE), trimmed)
    kinds = [only] if only else ["increase", "decrease", "pause"]
    moving = actions.filter(pl.col("action").is_in(kinds))
    pauses = int((moving["action"] == "pause").sum())
    return moving.height / weeks, pauses / weeks


def _with_thresholds(config: PoolsConfig, pool: str, **thresholds: float) -> PoolsConfig:
    pools = []
    for p in config.pools:
        if p.name == pool:
            merged = {**p.thresholds.model_dump(), **thresholds}
            p = p.model_copy(update={"thresholds": type(p.thresholds).model_validate(merged)})
        pools.append(p)
    return config.model_copy(update={"pools": pools})


def _side(kind, z, mine, values, config, pool, pause, median, weeks) -> tuple[float, float]:
    """One side's threshold (``low``: decrease, ``high``: increase) at credibility ``z``
    whose fire rate comes closest to half the healthy band's middle; and that rate."""
    t, side_target = pool.thresholds, sum(HEALTHY) / 4
    best = None
    for q in _QUANTILES:
        value = round(float(np.quantile(values, q if kind == "low" else 1 - q)), 3)
        if kind == "low":
            value = min(max(value, pause), median - 0.001)
            cfg = _with_thresholds(
                config, pool.name, decrease_below=value, pause_below=pause,
                increase_above=max(t.increase_above, value + 0.01), credible_z=z,
            )  # fmt: skip
            wanted = "decrease"
        else:
            value = min(max(value, median + 0.001), 1.0)
            cfg = _with_thresholds(
                config, pool.name, increase_above=value, pause_below=0.0,
                decrease_below=min(t.decrease_below, value - 0.01), credible_z=z,
            )  # fmt: skip
            wanted = "increase"
        rate = _fires(mine, cfg, pool.name, weeks, only=wanted)[0]
        key = (abs(rate - side_target), rate)
        if best is None or key < best[0]:
            best = (key, value, rate)
    assert best is not None
    return best[1], best[2]


def propose_thresholds(scores: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """Per pool, the thresholds that make its triggers fire at a healthy rate on the
    observation phase's ``scores`` (contracts.SCORES at several evaluation points): each side
    (increase, decrease) is calibrated alone toward half the healthy band's middle."""
    rows = []
    interval = config.settings.interval_hours
    scored = scores.filter(pl.col("status") == "scored", pl.col("score").is_not_null())
    for pool in config.pools:
        mine = scored.filter(pl.col("pool") == pool.name)
        points = mine["as_of"].n_unique()
        if mine.height == 0 or points < 2:
            continue
        weeks = max(points * interval / (24 * 7), 1 / 7)
        values = mine["score"].to_numpy()
        t = pool.thresholds
        now, now_pauses = _fires(mine, config, pool.name, weeks)
        # pause: below every score the phase saw (it never fires on noise), at most as now
        pause = float(min(t.pause_below, max(np.floor((values.min() - 0.02) * 100) / 100, 0.0)))
        median = float(np.median(values))

        # the strictest credibility that still reaches the healthy band (or comes closest)
        choice = None
        for z in _CREDIBLE_Z:
            low, low_rate = _side("low", z, mine, values, config, pool, pause, median, weeks)
            high, high_rate = _side("high", z, mine, values, config, pool, pause, median, weeks)
            total = low_rate + high_rate
            miss = max(HEALTHY[0] - total, total - HEALTHY[1], 0.0)
            if choice is None or miss < choice[0] - 1e-9:
                choice = (miss, z, low, high)
        assert choice is not None
        _, credible, low, high = choice
        proposed = _with_thresholds(
            config, pool.name, increase_above=high, decrease_below=low, pause_below=pause,
            credible_z=credible,
        )  # fmt: skip
        rate, pauses = _fires(mine, proposed, pool.name, weeks)
        rows.append(
            {
                "pool": pool.name,
                "entities": mine["entity_id"].n_unique(),
                "evaluation_points": points,
                "weeks": round(weeks, 2),
                "score_p05": float(np.quantile(values, 0.05)),
                "score_p50": median,
                "score_p95": float(np.quantile(values, 0.95)),
                "increase_above": t.increase_above,
                "decrease_below": t.decrease_below,
                "pause_below": t.pause_below,
                "fires_per_week": round(now, 2),
                "pauses_per_week": round(now_pauses, 2),
                "proposed_increase_above": high,
                "proposed_decrease_below": low,
                "proposed_pause_below": pause,
                "credible_z": t.credible_z,
                "proposed_credible_z": credible,
                "proposed_fires_per_week": round(rate, 2),
                "proposed_pauses_per_week": round(pauses, 2),
                "healthy_now": HEALTHY[0] <= now <= HEALTHY[1] and now_pauses == 0,
            }
        )
    return pl.DataFrame(rows, schema=CALIBRATION)


def pools_yaml(calibration: pl.DataFrame) -> str:
    """The proposal as a pools-file fragment to paste (each pool's ``thresholds``)."""
    lines = ["pools:"]
    for r in calibration.iter_rows(named=True):
        lines += [
            f"  - name: {r['pool']}  # {r['proposed_fires_per_week']:g} fires/week on the "
            f"observation phase (now {r['fires_per_week']:g})",
            f"    thresholds: {{increase_above: {r['proposed_increase_above']:g}, "
            f"decrease_below: {r['proposed_decrease_below']:g}, "
            f"pause_below: {r['proposed_pause_below']:g}, "
            f"credible_z: {r['proposed_credible_z']:g}}}",
        ]
    return "\n".join(lines)
