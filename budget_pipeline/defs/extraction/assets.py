"""Extraction: entities and hourly Insights from the ad account into DuckDB."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.contracts import INSIGHTS, conform
from budget_pipeline.defs.constants import DUCKDB_POOL, EXTRACTION
from budget_pipeline.defs.partition_metadata import add_daily_metadata, daily_totals
from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.windows import chunks, pull_window
from budget_pipeline.engine.execution import source_clock
from budget_pipeline.engine.pools import assign_pools, pool_summary
from budget_pipeline.money import format_money


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def validate_insights(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`budget_pipeline.schemas.validate_insights`, with pandera (and pandas) imported on
    the first validation rather than with the definitions: ~0.6 s of every launched run's
    import, paid also by runs and sensor ticks that extract nothing."""
    from budget_pipeline.schemas import validate_insights as validate

    return validate(frame)


@dg.asset(
    group_name=EXTRACTION,
    kinds={"duckdb", "polars"},
    pool=DUCKDB_POOL,
    description="Campaigns and ad sets with budget, budget type, status and pool, as of now.",
)
def ad_entities(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    account: AdAccount,
    pools: PoolsResource,
) -> dg.MaterializeResult:
    config = pools.load()
    with warehouse.connect() as con:
        source = account.open(con, config)
        entities = assign_pools(source.entities(), config)
        currencies = sorted(set(entities["currency"].drop_nulls()))
        if currencies and currencies != [config.currency]:
            raise ConfigError(
                f"pools file {pools.path}: currency {config.currency!r} does not match the ad "
                f"account's {', '.join(currencies)}; floors, ceilings and minimum budgets would "
                "be read with the wrong minor-unit factor. Set `currency:` in the pools file."
            )
        db.replace(
            con,
            entities.with_columns(pulled_at=pl.lit(_utcnow())),
            delete="delete_ad_entities",
            insert="replace_ad_entities",
            staged_as="staged_ad_entities",
        )
        # The Marketing API also says the account's minimum budgets and which ad sets are
        # still learning; the planner honours both (the simulated account has neither).
        limits = {}
        if hasattr(source, "minimum_budgets"):
            minimums = source.minimum_budgets()
            db.replace(
                con,
                minimums,
                delete="delete_account_minimum_budgets",
                insert="insert_account_minimum_budgets",
                staged_as="staged_minimum_budgets",
            )
            limits["minimum_budget_rows"] = minimums.height
        if hasattr(source, "learning_stage"):
            stages = source.learning_stage().select("entity_id", "in_learning", "learning_status")
            db.replace(
                con,
                stages,
                delete="delete_learning_stages",
                insert="insert_learning_stages",
                staged_as="staged_learning_stages",
            )
            limits["adsets_in_learning"] = int(stages["in_learning"].sum())
    summary = pool_summary(entities, config)
    unassigned = entities.filter(pl.col("entity_type") == "campaign", pl.col("pool").is_null())[
        "name"
    ].to_list()
    currency = config.currency
    table = "\n".join(
        [
            "| pool | tier | mode | budget holders | daily budget | floor | ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        + [
            f"| {r['pool']} | {r['tier']} | {r['mode']} | {r['budget_holders']} | "
            f"{format_money(r['daily_budget'], currency)} | {format_money(r['floor'], currency)} | "
            f"{format_money(r['ceiling'], currency)} |"
            for r in summary.iter_rows(named=True)
        ]
    )
    if unassigned:
        context.log.warning(f"campaigns in no pool (never moved): {unassigned}")
    return dg.MaterializeResult(
        metadata={
            "source": account.describe(),
            "campaigns": int((entities["entity_type"] == "campaign").sum()),
            "adsets": int((entities["entity_type"] == "adset").sum()),
            "active_adsets": int(
                ((entities["entity_type"] == "adset") & (entities["status"] == "ACTIVE")).sum()
            ),
            "lifetime_budget_entities": int((entities["budget_type"] == "lifetime").sum()),
            "locked_entities": int(entities["locked"].sum()),
            "unassigned_campaigns": dg.MetadataValue.json(unassigned),
            "pools": dg.MetadataValue.md(table),
            **limits,
        }
    )


@dg.asset(
    group_name=EXTRACTION,
    kinds={"duckdb", "pandera"},
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[ad_entities],  # the campaigns' pools choose each campaign's conversion action
    description=(
        "Hourly ad-set Insights as extracted, validated with pandera. Each run re-pulls the "
        "last days before its partitions (settings.repull_days, default 3) to catch late "
        "conversions; a batch that fails validation writes nothing."
    ),
)
def raw_insights(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    account: AdAccount,
    pools: PoolsResource,
) -> dg.MaterializeResult:
    config = pools.load()
    window = pull_window(context, context.assets_def.partitions_def, config.settings.repull_days)
    context.log.info(f"pulling {window.start} .. {window.end} ({window.days} days)")
    rows, spend, totals = 0, 0.0, []
    with warehouse.connect() as con:
        source = account.open(con, config)
        adsets = db.scalar(con, "select_adset_count") or 0
        # A long backfill is pulled a few days at a time into a staging table (memory stays
        # that of one chunk: 14M rows at 10k ad sets took 4.9 GB in one piece, and appended
        # chunk by chunk inside one transaction DuckDB held them all in memory), then moved
        # into raw_insights in one transaction: a chunk that fails validation writes nothing.
        db.run(con, "replace_raw_insights_pull")
        try:
            for first, last in chunks(window.start, window.end, adsets):
                frame = conform(source.hourly_insights(first, last), INSIGHTS)
                validate_insights(frame)  # raises naming row, column and value
                staged = frame.with_columns(  # the clock after each chunk's pull, as before
                    source=pl.lit(type(source).__name__),
                    pulled_at=pl.lit(_utcnow()),
                    reported_at=pl.lit(source_clock(source), dtype=pl.Datetime("us")),
                )
                with db.staged(con, "staged_raw_insights", staged):
                    db.run(con, "insert_raw_insights_pull")
                rows += frame.height
                spend += float(frame["spend"].sum())
                totals.append(daily_totals(frame))
                del frame, staged
            with db.transaction(con):
                params = {"start": window.start, "end": window.end}
                db.run(con, "delete_raw_insights_window", params)
                db.run(con, "insert_raw_insights_from_pull")
        finally:
            db.run(con, "drop_raw_insights_pull")
    # Each partition shows its own day; the pull's window (re-pulled days included) is
    # common to all of them.
    add_daily_metadata(context, pl.concat(totals))  # at least one chunk
    return dg.MaterializeResult(
        metadata={
            "pulled_from": str(window.start),
            "pulled_to": str(window.end),
            "restated_days": (window.partitions_start - window.start).days,
            "pulled_rows": rows,
            "pulled_spend": round(spend, 2),
        }
    )
