"""The seed's threshold policy ("composite"): fired score and compound triggers → proposals.

Each budget holder's *effective* action is the strongest that fired this cycle: pause >
decrease (largest pct) > increase (largest pct); ``alert`` and ``flag_creative`` move no money
and are named in the reason. A decrease proposes ``old × (1 − pct)``, an increase
``old × (1 + pct)`` (both rounded half up to the minor unit), a pause proposes a pause: its money
goes to active holders (:mod:`~budget_pipeline.engine.allocator`). Holders scoring above 0.5
with no action absorb what the others free, up to one capped step, after the triggered
increases. Merit is the score (a cross-tier move needs the score margin, SPEC §5); an absorber's
merit is its score − 1, so it is served after every triggered increase and never across tiers.
"""

from __future__ import annotations

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import PROPOSALS
from budget_pipeline.engine.holders import budget_holders, columns, num
from budget_pipeline.engine.plan_text import fixed2, pct_text

POLICY = "composite"
_MONEY_ACTIONS = ("pause", "decrease", "increase")
_ALL_ACTIONS = (*_MONEY_ACTIONS, "alert", "flag_creative")


def with_actions(frame: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    acts = columns(
        actions, contracts.ACTIONS, ("entity_id", "action", "pct", "trigger", "score"), "actions"
    ).with_row_index("_row")
    unknown = acts.filter(~pl.col("action").is_in(_ALL_ACTIONS) | pl.col("action").is_null())
    if unknown.height:
        row = unknown.row(0, named=True)
        raise ValueError(
            f"actions column 'action' has {row['action']!r} for entity {row['entity_id']!r}; "
            f"expected one of {list(_ALL_ACTIONS)}"
        )
    sized = pl.col("action").is_in(["increase", "decrease"])
    bad_pct = acts.filter(
        sized & (pl.col("pct").is_null() | pl.col("pct").is_nan() | (pl.col("pct") < 0))
    )
    if bad_pct.height:
        row = bad_pct.row(0, named=True)
        raise ValueError(
            f"actions column 'pct' is {row['pct']!r} for {row['action']} of entity "
            f"{row['entity_id']!r}; expected a non-negative percentage"
        )
    priority = (
        pl.when(pl.col("action") == "pause")
        .then(0)
        .when(pl.col("action") == "decrease")
        .then(1)
        .when(pl.col("action") == "increase")
        .then(2)
        .otherwise(3)
    )
    effective = (
        acts.with_columns(priority.alias("_prio"), pl.col("pct").fill_nan(None))
        .filter(pl.col("_prio") < 3)
        .sort(
            ["entity_id", "_prio", "pct", "trigger"],
            descending=[False, False, True, False],
            nulls_last=True,
        )
        .unique("entity_id", keep="first", maintain_order=True)
    )
    pct_shown = pct_text(pl.col("pct"))
    notes = (
        acts.join(effective.select("_row"), on="_row", how="anti")
        .with_columns(
            pl.concat_str(
                [
                    pl.col("action"),
                    pl.when(pl.col("pct").is_not_null()).then(
                        pl.concat_str([pl.lit(" "), pct_shown, pl.lit(" %")])
                    ),
                    pl.when(pl.col("trigger").is_not_null()).then(
                        pl.concat_str([pl.lit(" ("), pl.col("trigger"), pl.lit(")")])
                    ),
                ],
                ignore_nulls=True,
            ).alias("_note")
        )
        .group_by("entity_id")
        .agg(
            pl.col("_note").sort().str.join(", ").alias("also_fired"),
            pl.col("action").is_in(["alert", "flag_creative"]).any().alias("flagged"),
            pl.col("trigger").sort().first().alias("note_trigger"),
            pl.col("score").drop_nulls().max().alias("note_score"),
        )
    )
    eff = effective.select(
        "entity_id",
        pl.col("action").alias("act"),
        pl.col("pct").alias("act_pct"),
        pl.col("trigger").alias("act_trigger"),
        pl.col("score").alias("act_score"),
    )
    return (
        frame.join(eff, on="entity_id", how="left")
        .join(notes, on="entity_id", how="left")
        .with_columns(pl.col("flagged").fill_null(False))
    )


def propose_thresholds(
    entities: pl.DataFrame,
    scores: pl.DataFrame,
    actions: pl.DataFrame,
    config: PoolsConfig,
    *,
    pools: list[str],
) -> pl.DataFrame:
    """PROPOSALS for the holders of ``pools`` from this cycle's fired ``actions``
    (contracts.ACTIONS) and latest ``scores`` (contracts.SCORES)."""
    holders = budget_holders(entities, config).filter(pl.col("pool").is_in(pools))
    if holders.height == 0:
        return contracts.empty(PROPOSALS)
    latest = (
        columns(scores, contracts.SCORES, ("entity_id", "as_of", "status", "score"), "scores")
        .sort("entity_id", "as_of", nulls_last=False)
        .unique("entity_id", keep="last")
        .select(
            "entity_id",
            pl.when(pl.col("status") == "scored").then(pl.col("score")).alias("score_value"),
        )
    )
    settings = config.settings
    cap_pct = min(settings.learning_cap_pct, settings.learning_limit_pct)
    frame = with_actions(holders.join(latest, on="entity_id", how="left"), actions)
    old = pl.col("old_budget").cast(pl.Float64)
    pct = pl.col("act_pct").fill_null(0.0)
    score = pl.col("score_value")
    act = pl.col("act")
    absorber = act.is_null() & ~pl.col("flagged") & (score > 0.5).fill_null(False)
    target = (
        pl.when(act == "decrease")
        .then((old * (100.0 - pct) / 100.0 + 0.5).floor().clip(0, None))
        .when(act == "increase")
        .then((old * (100.0 + pct) / 100.0 + 0.5).floor())
        .when(absorber)
        .then((old * (100.0 + cap_pct) / 100.0).floor())
        .otherwise(None)
        .cast(pl.Int64)
    )
    merit = (
        pl.when(act == "increase")
        .then(score.fill_null(0.5))
        .when(absorber)
        .then(score - 1.0)
        .otherwise(score.fill_null(0.5))
    )
    return frame.select(
        "entity_id",
        target.alias("target_budget"),
        (act == "pause").fill_null(False).alias("pause"),
        merit.alias("merit"),
        pl.coalesce("act_trigger", "note_trigger").alias("trigger"),
        pl.coalesce("score_value", "act_score", "note_score").fill_nan(None).alias("score"),
        _why(config.currency, cap_pct).alias("why"),
    ).cast(PROPOSALS)  # type: ignore[arg-type]


def _why(currency: str, cap_pct: float) -> pl.Expr:
    score = pl.col("score_value")
    score_text = pl.when(score.is_not_null()).then(pl.concat_str([pl.lit("score "), fixed2(score)]))
    act = pl.col("act")
    head = (
        pl.when(act.is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.col("act_trigger").fill_null("unnamed trigger"),
                    pl.lit(": "),
                    act,
                    pl.when(pl.col("act_pct").is_not_null()).then(
                        pl.concat_str([pl.lit(" "), pct_text(pl.col("act_pct")), pl.lit(" %")])
                    ),
                ],
                ignore_nulls=True,
            )
        )
        .when(~pl.col("flagged") & (score > 0.5).fill_null(False))
        .then(
            pl.lit(
                f"no trigger; above its usual, so it may absorb freed budget (up to {num(cap_pct)} %)"
            )
        )
        .otherwise(pl.lit("no trigger"))
    )
    also = pl.when(pl.col("also_fired").is_not_null()).then(
        pl.concat_str([pl.lit("also fired: "), pl.col("also_fired")])
    )
    return pl.concat_str(
        [pl.concat_str([head, pl.lit(" ("), score_text.fill_null("unscored"), pl.lit(")")]), also],
        separator="; ",
        ignore_nulls=True,
    )
