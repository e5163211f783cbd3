"""What a marketer reads in the UI: names next to ids, and one money format.

Every table the assets put in their metadata goes through here: an entity's id comes with its
name and its campaign's name (from ``ad_entities``), and every amount is shown in major units
with the currency (``format_money``: ``20.69 EUR``). Tables are a few dozen rows, so formatting
cell by cell in Python costs nothing next to the run.
"""

from __future__ import annotations

import math
import re

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.contracts import AD_ENTITIES, conform
from budget_pipeline.money import MoneyError, format_money, minor_factor

LABELS: dict[str, pl.DataType] = {"entity_id": pl.Utf8(), "name": pl.Utf8(), "campaign": pl.Utf8()}


def entity_labels(entities: pl.DataFrame) -> pl.DataFrame:
    """``entity_id, name, campaign`` (the campaign's name) for every campaign and ad set."""
    campaigns = entities.filter(pl.col("entity_type") == "campaign").select(
        "campaign_id", pl.col("name").alias("campaign")
    )
    return (
        entities.select("entity_id", "campaign_id", "name")
        .join(campaigns, on="campaign_id", how="left")
        .select([pl.col(c).cast(t) for c, t in LABELS.items()])
    )


def read_labels(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return entity_labels(conform(db.read(con, "select_ad_entities"), AD_ENTITIES))


def with_names(frame: pl.DataFrame, labels: pl.DataFrame, *, campaign: bool = True) -> pl.DataFrame:
    """``frame`` with ``name`` (and ``campaign``) first, its other columns after; an id the
    labels do not know keeps an empty name."""
    keep = ["name", "campaign"] if campaign else ["name"]
    named = frame.join(labels.select("entity_id", *keep), on="entity_id", how="left")
    return named.select(*keep, *[c for c in frame.columns if c not in keep]).with_columns(
        [pl.col(c).fill_null("") for c in keep]
    )


def money(minor: int | None, currency: str) -> str:
    """Integer minor units as ``1,234.56 EUR``; empty for a missing amount."""
    return "" if minor is None else format_money(int(minor), currency)


def money_major(major: float | None, currency: str) -> str:
    """A major-unit float (spend, CPA) as money, rounded to the minor unit; "" if not finite."""
    if major is None or not math.isfinite(major):
        return ""
    return format_money(round(major * minor_factor(currency)), currency)


def signed_money(minor: int | None, currency: str) -> str:
    text = money(minor, currency)
    return f"+{text}" if minor and minor > 0 else text


def money_columns(
    frame: pl.DataFrame, columns: list[str], currency: str, *, signed: tuple[str, ...] = ()
) -> pl.DataFrame:
    """``columns`` (integer minor units) replaced by their money text."""
    return frame.with_columns(
        [
            pl.Series(
                c,
                [(signed_money if c in signed else money)(v, currency) for v in frame[c].to_list()],
                dtype=pl.Utf8,
            )
            for c in columns
        ]
    )


def to_major(minor: int | float | None, currency: str) -> float:
    """For plots: minor units as a major-unit float (0.0 for a missing amount)."""
    return 0.0 if minor is None else float(minor) / minor_factor(currency)


# The executor writes budgets into its action-log messages as integer minor units, always after
# one of these words ("daily_budget 2000 -> 2069", "found 4242", "freed 300 so far").
_BUDGET_IN_MESSAGE = re.compile(
    r"(?P<word>daily_budget(?: is| already back at)?|->|from|found|set|freed|needs|planned|nor)"
    r" (?P<amount>-?\d+)\b(?![.,]\d)"
)


def readable_message(message: str | None, currency: str) -> str:
    """An action-log message with its budgets in money (``daily_budget 20.00 EUR -> 20.69
    EUR``); error texts (HTTP codes) are left as they are."""
    if not message:
        return ""

    def repl(match: re.Match) -> str:
        try:
            return f"{match['word']} {format_money(int(match['amount']), currency)}"
        except MoneyError:
            return match[0]

    return _BUDGET_IN_MESSAGE.sub(repl, message)


def ratio(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def major_money_columns(frame: pl.DataFrame, columns: list[str], currency: str) -> pl.DataFrame:
    """``columns`` (major-unit floats: spend, value) replaced by their money text."""
    return frame.with_columns(
        [
            pl.Series(c, [money_major(v, currency) for v in frame[c].to_list()], dtype=pl.Utf8)
            for c in columns
        ]
    )
