"""Plan ids, pool totals and the words of a plan: reasons, money as text, the markdown summary."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime

import polars as pl

from budget_pipeline.money import format_money, minor_factor


def plan_id_for(plan: pl.DataFrame, as_of: datetime, scope: str = "") -> str:
    """A stable id: ``plan-YYYYMMDD-HHMM-<8 hex>`` hashing ``scope`` (the warehouse), as_of and
    the sorted moves: identical inputs in one warehouse give the same id."""
    rows = plan.select(
        pl.concat_str(
            [
                pl.col("entity_id"),
                pl.col("old_budget").cast(pl.Utf8),
                pl.col("new_budget").cast(pl.Utf8),
                pl.col("pause").cast(pl.Utf8),
            ],
            separator=",",
        )
        .sort_by("entity_id")
        .str.join("\n", ignore_nulls=False)
    ).item()
    if rows is None:
        raise ValueError("plan_id_for: a plan row has a null entity_id, budget or pause")
    text = (f"{scope}\n" if scope else "") + as_of.isoformat() + "\n" + rows
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"plan-{as_of:%Y%m%d-%H%M}-{digest}"


def pool_totals(plan: pl.DataFrame) -> pl.DataFrame:
    """Per pool: ``pool, tier, before, after`` (sums of old and new budgets, minor units)."""
    return (
        plan.group_by("pool", "tier")
        .agg(
            pl.col("old_budget").sum().cast(pl.Int64).alias("before"),
            pl.col("new_budget").sum().cast(pl.Int64).alias("after"),
        )
        .sort("tier", "pool")
    )


def plan_summary_markdown(plan: pl.DataFrame, currency: str) -> str:
    """A markdown summary: pool totals, the moves with their reasons, and held triggers."""
    if plan.height == 0:
        return "Empty plan: no budget holders in any pool."

    def money(v: int) -> str:
        return format_money(int(v), currency)

    def cell(text: str | None) -> str:
        return (text or "").replace("|", "\\|").replace("\n", " ")

    moves = plan.filter((pl.col("new_budget") != pl.col("old_budget")) | pl.col("pause"))
    held = plan.filter((pl.col("action") == "hold") & pl.col("trigger").is_not_null()).sort(
        "pool", "entity_id"
    )
    lines = [
        f"**{plan['plan_id'][0]}**: {moves.height} move(s) over {plan.height} budget holders, "
        f"{int(plan['pause'].sum())} pause(s), {held.height} trigger(s) held.",
        "",
        "| pool | tier | before | after | change |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in pool_totals(plan).iter_rows(named=True):
        change = row["after"] - row["before"]
        lines.append(
            f"| {row['pool']} | {row['tier']} | {money(row['before'])} | {money(row['after'])} "
            f"| {'+' if change > 0 else ''}{money(change)} |"
        )
    if moves.height:
        lines += [
            "",
            "| entity | pool | action | old | new | delta | target | reason |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for row in moves.sort("pool", "entity_id").iter_rows(named=True):
            delta = row["delta"]
            lines.append(
                f"| {row['entity_id']} | {row['pool']} | {row['action']} | "
                f"{money(row['old_budget'])} | {money(row['new_budget'])} | "
                f"{'+' if delta > 0 else ''}{money(delta)} | {money(row['target_budget'])} | "
                f"{cell(row['reason'])} |"
            )
    else:
        lines += ["", "No budget moves this cycle."]
    if held.height:
        lines += ["", "| held entity | pool | reason |", "|---|---|---|"]
        for row in held.iter_rows(named=True):
            lines.append(f"| {row['entity_id']} | {row['pool']} | {cell(row['reason'])} |")
    return "\n".join(lines)


def money_text(expr: pl.Expr, currency: str) -> pl.Expr:
    """Minor units → ``"123.45 EUR"`` as a polars expression (format_money without separators)."""
    factor = minor_factor(currency)
    if factor == 1:
        return pl.concat_str([expr.cast(pl.Utf8), pl.lit(f" {currency}")])
    # the minor digits looked up ("00" … "99"), not printed and padded: 1.3x faster
    digits = _minor_digits(factor)
    return pl.concat_str(
        [
            pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (expr.abs() // factor).cast(pl.Utf8),
            pl.lit("."),
            digits.gather(expr.abs() % factor),
            pl.lit(f" {currency}"),
        ]
    )


@functools.cache
def _minor_digits(factor: int) -> pl.Expr:
    width = len(str(factor)) - 1
    return pl.lit(pl.Series([f"{i:0{width}d}" for i in range(factor)], dtype=pl.Utf8))


def fixed2(expr: pl.Expr) -> pl.Expr:
    """A non-negative float as text with two decimals (``0.5`` → ``"0.50"``)."""
    hundredths = (expr * 100).round(0).cast(pl.Int64)
    return pl.concat_str(
        [
            (hundredths // 100).cast(pl.Utf8),
            pl.lit("."),
            (hundredths % 100).cast(pl.Utf8).str.zfill(2),
        ]
    )


def pct_text(expr: pl.Expr) -> pl.Expr:
    """``25.0`` → ``"25"``, ``12.5`` → ``"12.5"``."""
    return (
        pl.when(expr == expr.round(0))
        .then(expr.round(0).cast(pl.Int64).cast(pl.Utf8))
        .otherwise(expr.round(2).cast(pl.Utf8))
    )


def allocation_reasons(
    frame: pl.DataFrame, currency: str, cap_pct: str, margin: float
) -> pl.Series:
    """The reason of each plan row: the policy's ``why``, then what the allocator did and what
    bound it (``frame``: the columns of :func:`budget_pipeline.engine.allocator.allocate`'s
    frame, with ``new_budget``).

    The words depend on the row's case (held, a crumb, a pause, a donor, a recipient ...); each
    case's words are built on its own rows only, so a row pays for the text it shows, not for
    every case's (money as text costs most, and a donor's and a recipient's words hold several
    sums each)."""
    cases, which_case = _reason_cases(currency, cap_pct, margin)
    which = frame.select(which_case).to_series()
    numbered = frame.with_row_index("_row")
    parts = [
        numbered.filter(which == i).select("_row", cases[i][1].alias("body"))
        for i in which.unique().sort().to_list()
    ]
    body = pl.concat(parts).sort("_row")["body"] if parts else pl.Series("body", [], pl.Utf8)
    return frame.select(
        pl.concat_str(
            [pl.col("why").fill_null("no proposal"), pl.lit(body)],
            separator=" — ",
            ignore_nulls=True,
        )
    ).to_series()


@functools.lru_cache(maxsize=64)
def _reason_cases(
    currency: str, cap_pct: str, margin: float
) -> tuple[list[tuple[pl.Expr, pl.Expr]], pl.Expr]:
    """(condition, words) per case of a plan row, first match wins, the last always matches;
    and the case of each row. Built once per (currency, cap, margin): building the
    expressions costs more than running them on a few thousand rows."""
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
    cases = [
        (pl.col("block").is_not_null(), pl.concat_str([pl.lit("hold: "), pl.col("block")])),
        (
            pl.col("crumb"),
            pl.concat_str(
                [
                    pl.lit("hold: the move would be under the minimum move of "),
                    m(pl.col("min_move")),
                ]
            ),
        ),
        (
            role == PAUSE,
            pl.concat_str(
                [
                    pl.lit("pause; its "),
                    m(old),
                    pl.lit(" a day goes to active ad sets (stored budget kept while paused)"),
                ]
            ),
        ),
        (pl.col("pause_waits"), pause_waits),
        (role == DONOR, donor),
        (role == RECIPIENT, recipient),
        (role == HOLD, pl.lit("hold: no move needed")),
        (pl.lit(True), pl.lit("hold")),
    ]
    which = pl.coalesce([pl.when(c).then(pl.lit(i, pl.Int32)) for i, (c, _) in enumerate(cases)])
    return cases, which
