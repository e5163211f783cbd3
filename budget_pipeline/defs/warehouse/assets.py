"""The warehouse: the idempotent hourly ``insights`` table and each entity's own baseline."""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg
import duckdb
import polars as pl

from budget_pipeline import db, insights_rollup
from budget_pipeline.config.pools import Settings
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.defs.constants import DUCKDB_POOL, WAREHOUSE
from budget_pipeline.defs.display import entity_labels
from budget_pipeline.defs.evaluation_point import (
    SCORE_ENTITY_COLUMNS,
    already_decided,
    decided,
    decision_inputs,
    evaluation_point,
    record_decided,
)
from budget_pipeline.defs.extraction.assets import ad_entities, raw_insights
from budget_pipeline.defs.partition_metadata import add_daily_metadata
from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.resources import PoolsResource, Warehouse
from budget_pipeline.defs.warehouse.metadata import baselines_table
from budget_pipeline.defs.windows import chunks, pull_window
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.signals import BASELINES
from budget_pipeline.engine.signals import entity_baselines as compute_baselines


class DuplicateInsightsError(RuntimeError):
    """A write would leave two rows for one ad set and hour in ``insights``."""


@dg.asset(
    group_name=WAREHOUSE,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_insights],
    description=(
        "Hourly ad-set Insights (DuckDB table `insights`, rolled up per day in "
        "`insights_daily`). Each run deletes its window, re-pulled days included, and inserts "
        "the latest pull in one transaction: re-running a partition replaces its rows, never "
        "duplicates them."
    ),
)
def insights(
    context: dg.AssetExecutionContext, warehouse: Warehouse, pools: PoolsResource
) -> dg.MaterializeResult:
    settings = pools.load().settings
    window = pull_window(context, context.assets_def.partitions_def, settings.repull_days)
    params = {"start": window.start, "end": window.end}
    with warehouse.connect() as con:
        adsets = db.scalar(con, "select_adset_count") or 0
        maturity = settings.maturity_curve()
        with db.transaction(con):
            db.run(con, "delete_insights_window", params)
            db.run(con, "merge_insights_partition", {**params, "maturity": maturity})
            # No primary key (it made this write 40x slower at 10k ad sets): the window is
            # checked instead, a few days at a time (the key holds a date; the whole window at
            # once held every key in memory), and a duplicate rolls the whole write back.
            for first, last in chunks(window.start, window.end, adsets):
                chunk = {"start": first, "end": last}
                duplicates = db.scalar(con, "select_insights_window_duplicates", chunk)
                if duplicates:
                    raise DuplicateInsightsError(
                        f"insights {first} .. {last}: {duplicates} hourly row(s) repeat an "
                        "(adset_id, date, hour) already in the window; nothing was written"
                    )
                # the days the decisions read, rolled up with the hours they come from
                insights_rollup.refresh(con, first, last)
        # the window's totals from its days (a DISTINCT over the whole window held every ad
        # set and day in memory: +0.7 GB at 10k ad sets)
        per_day = db.read(con, "select_insights_daily_summary", params)
        rows, days = int(per_day["rows"].sum()), per_day.height
        spend, value = float(per_day["spend"].sum()), float(per_day["purchase_value"].sum())
        total_rows = db.scalar(con, "select_insights_count")
    # Each partition shows its own day; the run's window (re-pulled days included) and the
    # table are common to all of them.
    add_daily_metadata(context, per_day)
    return dg.MaterializeResult(
        metadata={
            "window": f"{window.start} .. {window.end}",
            "window_days": int(days),
            "window_rows": int(rows),
            "window_spend": float(round(spend, 2)),
            "window_roas": float(round(value / spend, 3)) if spend else 0.0,
            "table_rows_total": int(total_rows),
        }
    )


@dg.asset(
    group_name=WAREHOUSE,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    deps=[insights, ad_entities],
    description=(
        "Each ad set's own baseline (SQL in sql/select_entity_baselines.sql): its ROAS, CPA, "
        "CTR and frequency over the baseline window (default 30 days) before its lookback "
        "window, as of the newest evaluation point (kept, not recomputed, until the next one)."
    ),
)
def entity_baselines(
    context: dg.AssetExecutionContext, warehouse: Warehouse, pools: PoolsResource
) -> dg.MaterializeResult:
    config = pools.load()
    settings = config.settings
    with warehouse.connect() as con:
        as_of = evaluation_point(cycle_as_of(con), settings.interval_hours)
        entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
        inputs = _baseline_inputs(con, as_of, settings, entities)
        if already_decided(con, "entity_baselines", as_of, inputs) is not None:
            context.log.info(f"baselines at {as_of} are up to date: kept")
            frame = _stored(con)
            recomputed = False
        else:
            frame = compute_baselines(con, [as_of], settings=settings, entities=entities)
            written = insights_rollup.written_version(con)
            with db.transaction(con), db.staged(con, "staged_entity_baselines", frame):
                db.run(con, "replace_entity_baselines")
                # with the Insights' write token they were computed from: the scores reuse
                # them only while no write has restated those hours since (stored_baselines)
                record_decided(con, "entity_baselines", as_of, inputs, written)
            recomputed = True
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "recomputed": recomputed,
            "entities": frame.height,
            "baselines": dg.MetadataValue.md(
                baselines_table(frame, entity_labels(entities), config.currency)
            ),
        }
    )


def _baseline_inputs(
    con: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings, entities: pl.DataFrame
) -> str:
    """What the baselines at ``as_of`` are computed from (decision_inputs): the Insights before
    it, the settings and the ad sets (``entities`` AD_ENTITIES)."""
    return decision_inputs(con, as_of, settings, entities.select(SCORE_ENTITY_COLUMNS))


def _stored(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    # read in storage order and sorted here (the query's ORDER BY cost twice as much at 10k)
    return conform(db.read(con, "select_stored_entity_baselines"), BASELINES).sort(
        "as_of", "adset_id"
    )


def stored_baselines(
    con: duckdb.DuckDBPyConnection,
    points: Sequence[datetime],
    settings: Settings,
    entities: pl.DataFrame,
) -> pl.DataFrame | None:
    """The baselines ``entity_baselines`` stored, if they are the ones the scores at ``points``
    would compute (BASELINES, equal to the bit): one point, the one they were computed at,
    from the same inputs (the fingerprint it recorded: the Insights before the point, the
    settings, the ad sets, the code) and no write of the Insights since (the token
    insights_rollup.mark_written leaves). Else None: the caller computes them.

    In a cycle the baselines asset runs just before the scores at the same newest point, so
    the scores read its 10k rows instead of computing them a second time (at 10k ad sets the
    baseline query and its 7-day volume are most of the scores' reads)."""
    if len(points) != 1:
        return None
    # the fingerprint counts the Insights' rows, not their values: a write since (the 3-day
    # re-pull restates late conversions every tick; a repair by hand) leaves it equal, and
    # the table entity_baselines kept is then not what the scores would compute now. The
    # token is asked first: it is a lookup, the fingerprint a count over the Insights.
    recorded = decided(con, "entity_baselines") or {}
    written = insights_rollup.written_version(con)
    if not written or recorded.get("result") != written:
        return None
    inputs = _baseline_inputs(con, points[0], settings, entities)
    if already_decided(con, "entity_baselines", points[0], inputs) != written:
        return None
    return _stored(con)
