"""The words of a plan as they were built before issue 11's rework (commit e29447a, verbatim:
``git show e29447a:budget_pipeline/engine/plan_text.py``, its ``plan_id_for``, ``money_text``
and ``allocation_reason``): every case's words built for every row, money printed and padded.
The oracle the reworked text (each case's words on its own rows, digits looked up) must match
character for character on any frame. A change of the words changes both: retire this file
then."""

# ruff: noqa
from __future__ import annotations

import hashlib
from datetime import datetime

import polars as pl

from budget_pipeline.money import minor_factor


def plan_id_for(plan: pl.DataFrame, as_of: datetime, scope: str = "") -> str:
    """A stable id: ``plan-YYYYMMDD-HHMM-<8 hex>`` hashing ``scope`` (the warehouse), as_of and
    the sorted moves: identical inputs in one warehouse give the same id."""
    rows = plan.sort("entity_id").select(
        pl.concat_str(
            [
                pl.col("entity_id"),
                pl.col("old_budget").cast(pl.Utf8),
                pl.col("new_budget").cast(pl.Utf8),
                pl.col("pause").cast(pl.Utf8),
            ],
            separator=",",
        )
    )
    text = (f"{scope}\n" if scope else "") + as_of.isoformat() + "\n"
    text += "\n".join(rows.to_series().to_list())
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"plan-{as_of:%Y%m%d-%H%M}-{digest}"


def money_text(expr: pl.Expr, currency: str) -> pl.Expr:
    """Minor units → ``"123.45 EUR"`` as a polars expression (format_money without separators)."""
    factor = minor_factor(currency)
    if factor == 1:
        return pl.concat_str([expr.cast(pl.Utf8), pl.lit(f" {currency}")])
    width = len(str(factor)) - 1
    sign = pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(
        [
            sign,
            (expr.abs() // factor).cast(pl.Utf8),
            pl.lit("."),
            (expr.abs() % factor).cast(pl.Utf8).str.zfill(width),
            pl.lit(f" {currency}"),
        ]
    )


def allocation_reason(currency: str, cap_pct: str, margin: float) -> pl.Expr:
    """The reason of each plan row: the policy's ``why``, then what the allocator did and what
    bound it (columns of :func:`budget_pipeline.engine.allocator.allocate`'s frame)."""
    from budget_pipeline.engine.allocator import DONOR, HOLD, PAUSE, RECIPIENT

    def m(expr: pl.Expr) -> pl.Expr:
        return money_text(expr, currency)

    role, old = pl.col("role"), pl.col("old_budget")
    given, taken = pl.col("given"), pl.col("taken")
    new = pl.col("new_budget")
    moved = (given > 0) | (taken > 0)
    route = pl.concat_str(
        [
            pl.when((pl.col("route") & 1) > 0).then(pl.lit("same pool")),
            pl.when((pl.col("route") & 2) > 0).then(pl.lit("other pools of its tier")),
            pl.when((pl.col("route") & 4) > 0).then(pl.lit(f"other tiers (margin {margin:g})")),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    wanted_down = old - pl.col("target_budget").fill_null(0)
    wanted_up = pl.col("target_budget").fill_null(0) - old
    glide = pl.lit(f"glide path: one step is at most {cap_pct} %")
    donor = pl.concat_str(
        [
            pl.when(moved)
            .then(
                pl.concat_str(
                    [
                        pl.lit("decrease "),
                        m(given),
                        pl.lit(" to "),
                        m(new),
                        pl.lit(" (to "),
                        route,
                        pl.lit(")"),
                    ]
                )
            )
            .otherwise(pl.lit("hold")),
            pl.when(
                (pl.col("cap_minor") < wanted_down) & (pl.col("cap_minor") <= pl.col("room_min"))
            ).then(glide),
            pl.when(
                (pl.col("room_min") < wanted_down) & (pl.col("room_min") < pl.col("cap_minor"))
            ).then(
                pl.concat_str([pl.lit("min budget "), m(pl.col("min_budget")), pl.lit(" binds")])
            ),
            pl.when((given < pl.col("offer")) & pl.col("floor_hit")).then(
                pl.concat_str([pl.lit("pool floor "), m(pl.col("pool_floor")), pl.lit(" binds")])
            ),
            pl.when((given < pl.col("offer")) & ~pl.col("floor_hit") & moved).then(
                pl.lit("shrunk to what recipients could take")
            ),
            pl.when(~moved & (pl.col("offer") > 0)).then(
                pl.lit("no recipient for the freed budget")
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    recipient = pl.concat_str(
        [
            pl.when(moved)
            .then(
                pl.concat_str(
                    [
                        pl.lit("increase "),
                        m(taken),
                        pl.lit(" to "),
                        m(new),
                        pl.lit(" (from "),
                        route,
                        pl.lit(")"),
                    ]
                )
            )
            .otherwise(pl.lit("hold: no donor")),
            pl.when(pl.col("cap_minor") < wanted_up).then(glide),
            pl.when((taken < pl.col("want")) & pl.col("ceiling_hit")).then(
                pl.concat_str(
                    [pl.lit("pool ceiling "), m(pl.col("pool_ceiling")), pl.lit(" binds")]
                )
            ),
            pl.when((taken < pl.col("want")) & pl.col("margin_blocked")).then(
                pl.lit(f"other tiers' donors are not {margin:g} worse (cross-tier margin)")
            ),
            pl.when(
                (taken < pl.col("want"))
                & moved
                & ~pl.col("ceiling_hit")
                & ~pl.col("margin_blocked")
            ).then(pl.lit("scaled down: not enough freed budget")),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    pause_waits = pl.concat_str(
        [
            pl.lit("pause waits: its "),
            m(old),
            pl.lit(" a day cannot all go to active ad sets this cycle; "),
            donor,
        ]
    )
    body = (
        pl.when(pl.col("block").is_not_null())
        .then(pl.concat_str([pl.lit("hold: "), pl.col("block")]))
        .when(pl.col("crumb"))
        .then(
            pl.concat_str(
                [
                    pl.lit("hold: the move would be under the minimum move of "),
                    m(pl.col("min_move")),
                ]
            )
        )
        .when(role == PAUSE)
        .then(
            pl.concat_str(
                [
                    pl.lit("pause; its "),
                    m(old),
                    pl.lit(" a day goes to active ad sets (stored budget kept while paused)"),
                ]
            )
        )
        .when(pl.col("pause_waits"))
        .then(pause_waits)
        .when(role == DONOR)
        .then(donor)
        .when(role == RECIPIENT)
        .then(recipient)
        .when(role == HOLD)
        .then(pl.lit("hold: no move needed"))
        .otherwise(pl.lit("hold"))
    )
    return pl.concat_str(
        [pl.col("why").fill_null("no proposal"), body], separator=" — ", ignore_nulls=True
    )
