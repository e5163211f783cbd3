"""``score_calibration``: each pool's thresholds, proposed from its observation phase.

The scores of the last :data:`OBSERVATION_DAYS` daily evaluation points are recomputed with the
engine's own functions (as the cycle computes them, each from the data available that day),
and :func:`~budget_pipeline.engine.calibration.propose_thresholds` replays the trigger state
machine over them. The proposal, its evidence and a pools-file fragment to paste are the
asset's metadata; a WARN check says when a pool's current thresholds fire outside the healthy
3–7 times a week, or pause on noise.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import polars as pl

from budget_pipeline import db
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.defs.monitoring.assets import _asset, _spec, _warn
from budget_pipeline.defs.resources import PoolsResource, Warehouse
from budget_pipeline.engine.calibration import HEALTHY, pools_yaml, propose_thresholds
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.report import markdown_table
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.signals import entity_baselines, window_metrics

OBSERVATION_DAYS = 28  # four weekly cycles (SPEC §9: at least 14 days over two weeks)

CALIBRATION_CHECK = _spec(
    "score_calibration",
    "score_calibration_fire_rate_healthy",
    f"With today's thresholds each pool's triggers fire {HEALTHY[0]:g}–{HEALTHY[1]:g} times a "
    "week over the observation phase and never pause on noise.",
)


@_asset(
    "score_calibration",
    "Each pool's score thresholds proposed from the observation phase (its last 28 daily "
    "evaluation points): fire rate now and with the proposal, the score distribution, and a "
    "pools-file fragment to accept.",
    CALIBRATION_CHECK,
)
def score_calibration(warehouse: Warehouse, pools: PoolsResource) -> dg.MaterializeResult:
    from budget_pipeline.defs.decisions.assets import windows_needed

    config = pools.load()
    step = timedelta(hours=config.settings.interval_hours)
    with warehouse.connect() as con:
        as_of = cycle_as_of(con)
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        points = [as_of - k * step for k in range(OBSERVATION_DAYS * 24 // max(
            config.settings.interval_hours, 1))][::-1]  # fmt: skip
        scores = score_entities(
            window_metrics(con, points, windows_needed(config)),
            entity_baselines(con, points, settings=config.settings, entities=entities),
            entities,
            config,
        )
    proposal = propose_thresholds(scores, config)
    unhealthy = proposal.filter(~pl.col("healthy_now")).select(
        "pool", "fires_per_week", "pauses_per_week"
    )
    shown = proposal.select(
        "pool", "entities", "weeks", "score_p05", "score_p50", "score_p95",
        "increase_above", "decrease_below", "pause_below", "credible_z", "fires_per_week",
        "pauses_per_week",
        "proposed_increase_above", "proposed_decrease_below", "proposed_pause_below",
        "proposed_credible_z", "proposed_fires_per_week",
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "observation_points": len(points),
            "proposal": dg.MetadataValue.md(markdown_table(shown)),
            "pools_file_fragment": dg.MetadataValue.md(f"```yaml\n{pools_yaml(proposal)}\n```"),
            **{
                f"{r['pool']}/fires_per_week": float(r["fires_per_week"])
                for r in proposal.iter_rows(named=True)
            },
        },
        check_results=[_warn(CALIBRATION_CHECK, unhealthy)],
    )
