"""``budget-pipeline rules``: preview what a Meta ad rule (``adrules_library`` JSON) would do.

``budget-pipeline rules preview --rule RULE.json --adsets ADSETS.csv [--json]`` reads the rule,
reads the ad sets and prints the plan of :func:`budget_pipeline.engine.meta_rules.apply_rule`.

ADSETS.csv has the columns ``adset_id, campaign_id, daily_budget, lifetime_budget,
lifetime_spend`` (integer minor units, empty where not applicable: an ad set has exactly one of
the two budgets, and a lifetime budget needs its spend), plus any metric columns the rule's
filters or ``target_field`` name (see the column convention in ``engine/meta_rules.py``, e.g.
``cost_per_purchase_fb`` or ``last_7d__spent``), plus optionally ``name``, ``campaign_name``
and ``last_applied`` (ISO 8601 time this rule last changed the ad set, for CHANGE_BUDGET's
``action_frequency``). ADSETS.csv is one file: a directory is refused, not read as every CSV
in it. Errors name the row as a spreadsheet does (the header is row 1) and the column; bad
input exits with code 2 and a one-line error on stderr. ``--json`` prints, per ad set, the same
columns as the table, ``reason`` included.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from budget_pipeline.config.loading import ConfigError, read_text_file
from budget_pipeline.engine.meta_rules import (
    REQUIRED_COLUMNS,
    AdsetFrameError,
    MetaRule,
    RuleError,
    apply_rule,
    load_rule,
    referenced_columns,
)

__all__ = ["AdsetsCsvError", "read_adsets_csv", "rules_app"]

rules_app = typer.Typer(no_args_is_help=True)

_BUDGET_COLUMNS = ("daily_budget", "lifetime_budget", "lifetime_spend")
_ID_COLUMNS = ("adset_id", "campaign_id")
_TEXT_COLUMNS = frozenset({"name", "adset_name", "campaign_name", "status", "effective_status"})
_OUTPUT_KEYS = (
    "adset_id",
    "campaign_id",
    "budget_type",
    "old_budget",
    "new_budget",
    "paused",
    "reason",
)


class AdsetsCsvError(ValueError):
    """An ADSETS.csv that cannot be used; the message names the row and column."""


def _row(index: int) -> int:
    """Spreadsheet row of a 0-based data row (the header is row 1)."""
    return index + 2


def _first_bad(frame: pl.DataFrame, mask: pl.Expr, column: str) -> tuple[int, str] | None:
    hit = frame.with_row_index("_i").filter(mask).select("_i", column).head(1)
    if hit.height == 0:
        return None
    return int(hit.item(0, "_i")), str(hit.item(0, column))


def read_adsets_csv(path: str | Path, rule: MetaRule | None = None) -> pl.DataFrame:
    """Read and validate ADSETS.csv; budgets become Int64 minor units (empty → null).

    Columns the rule reads numerically must parse as numbers; other extra columns become
    Float64 when every value is a number and stay text otherwise. Raises
    :class:`AdsetsCsvError` naming the row and column, or :class:`RuleError` when a rule field
    has no column.
    """
    p = Path(path)
    if not p.exists():
        raise AdsetsCsvError(f"{p}: no such file")
    if p.is_dir():
        raise AdsetsCsvError(
            f"{p} is a directory: give one CSV file (the ad sets are not gathered from every "
            "file in a folder)"
        )
    try:
        text = read_text_file(p, what="ad-sets CSV")
    except ConfigError as exc:
        raise AdsetsCsvError(str(exc)) from None
    try:
        # Everything as text first, so a bad value is reported with its row and column instead
        # of a parser message; then the explicit schema below is applied column by column.
        raw = pl.read_csv(io.StringIO(text), infer_schema=False, raise_if_empty=False)
    except pl.exceptions.PolarsError as exc:
        raise AdsetsCsvError(f"{p}: cannot read as CSV: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise AdsetsCsvError(f"{p}: missing required column(s): " + ", ".join(missing))
    frame = raw.with_columns(pl.col(c).str.strip_chars() for c in raw.columns)
    frame = frame.with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns
    )

    for c in _ID_COLUMNS:
        if (bad := _first_bad(frame, pl.col(c).is_null(), c)) is not None:
            raise AdsetsCsvError(f"row {_row(bad[0])}, column {c}: empty")
    for c in _BUDGET_COLUMNS:
        not_int = pl.col(c).is_not_null() & ~pl.col(c).str.contains(r"^[0-9]+$")
        if (bad := _first_bad(frame, not_int, c)) is not None:
            raise AdsetsCsvError(
                f"row {_row(bad[0])}, column {c}: {bad[1]!r} is not an integer number of "
                "minor units"
            )
        too_long = pl.col(c).str.strip_chars_start("0").str.len_chars() > 18
        if (bad := _first_bad(frame, too_long.fill_null(False), c)) is not None:
            raise AdsetsCsvError(
                f"row {_row(bad[0])}, column {c}: {bad[1]!r} has more than 18 digits (budgets "
                "are 64-bit integers of minor units)"
            )
    frame = frame.with_columns(pl.col(c).cast(pl.Int64) for c in _BUDGET_COLUMNS)

    indexed = frame.with_row_index("_i")
    dupes = indexed.filter(pl.col("adset_id").is_duplicated()).sort("_i")
    if dupes.height:
        first_id = dupes.item(0, "adset_id")
        rows = dupes.filter(pl.col("adset_id") == first_id).get_column("_i").to_list()
        raise AdsetsCsvError(
            f"row {_row(rows[1])}, column adset_id: duplicate {first_id!r} (first on row "
            f"{_row(rows[0])})"
        )
    daily, lifetime = pl.col("daily_budget").is_not_null(), pl.col("lifetime_budget").is_not_null()
    checks = [
        (daily & lifetime, "adset_id", "has both a daily_budget and a lifetime_budget"),
        (~daily & ~lifetime, "adset_id", "has neither a daily_budget nor a lifetime_budget"),
    ]
    for mask, col, message in checks:
        if (bad := _first_bad(frame, mask, col)) is not None:
            raise AdsetsCsvError(f"row {_row(bad[0])}: ad set {bad[1]!r} {message}")
    if (
        bad := _first_bad(frame, lifetime & pl.col("lifetime_spend").is_null(), "adset_id")
    ) is not None:
        raise AdsetsCsvError(
            f"row {_row(bad[0])}, column lifetime_spend: empty, but ad set {bad[1]!r} has a "
            "lifetime_budget"
        )
    over = lifetime & (pl.col("lifetime_spend") > pl.col("lifetime_budget"))
    if (bad := _first_bad(frame, over, "lifetime_spend")) is not None:
        raise AdsetsCsvError(
            f"row {_row(bad[0])}, column lifetime_spend: {bad[1]} is above lifetime_budget"
        )

    needs_number = referenced_columns(rule, frame.columns) if rule is not None else {}
    fixed = set(REQUIRED_COLUMNS) | {"last_applied"}
    casts = []
    for c in frame.columns:
        if c in fixed or (c in _TEXT_COLUMNS and not needs_number.get(c)):
            continue
        as_number = pl.col(c).cast(pl.Float64, strict=False)
        bad = _first_bad(frame, pl.col(c).is_not_null() & as_number.is_null(), c)
        if bad is None:
            casts.append(as_number.alias(c))
        elif needs_number.get(c):
            raise AdsetsCsvError(f"row {_row(bad[0])}, column {c}: {bad[1]!r} is not a number")
    frame = frame.with_columns(casts)
    if "last_applied" in frame.columns:
        parsed = pl.col("last_applied").str.to_datetime(strict=False, time_unit="us")
        bad = _first_bad(
            frame, pl.col("last_applied").is_not_null() & parsed.is_null(), "last_applied"
        )
        if bad is not None:
            raise AdsetsCsvError(
                f"row {_row(bad[0])}, column last_applied: {bad[1]!r} is not an ISO 8601 time"
            )
        frame = frame.with_columns(parsed.alias("last_applied"))
    return frame


def _last_applied(frame: pl.DataFrame) -> dict[str, datetime]:
    if "last_applied" not in frame.columns:
        return {}
    rows = frame.filter(pl.col("last_applied").is_not_null()).select("adset_id", "last_applied")
    return dict(zip(rows.get_column("adset_id"), rows.get_column("last_applied"), strict=True))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@rules_app.callback()
def rules() -> None:
    """Meta ad rules (adrules_library JSON): preview a REBALANCE_BUDGET or CHANGE_BUDGET rule."""


@rules_app.command("preview")
def preview(
    rule_path: Annotated[
        Path, typer.Option("--rule", help="Rule JSON in Meta's adrules_library shape.")
    ],
    adsets_path: Annotated[
        Path,
        typer.Option(
            "--adsets",
            help="CSV: adset_id, campaign_id, daily_budget, lifetime_budget, lifetime_spend "
            "(minor units) plus the metric columns the rule names.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as a JSON list on stdout.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(help="Evaluation time (ISO 8601) for action_frequency; default: now."),
    ] = None,
) -> None:
    """Print what the rule would do to each ad set: old and new budget, paused or not."""
    try:
        when = datetime.fromisoformat(now) if now is not None else None
    except ValueError:
        raise _fail(f"--now: {now!r} is not an ISO 8601 time (e.g. 2026-03-02T06:00:00)") from None
    try:
        read_text_file(rule_path, what="rule file")  # a directory or binary file, named
        rule = load_rule(rule_path)
        frame = read_adsets_csv(adsets_path, rule)
        plan = apply_rule(rule, frame, now=when, last_applied=_last_applied(frame))
    except (ConfigError, RuleError, AdsetsCsvError, AdsetFrameError) as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:  # e.g. naive vs aware times, named by the ad set
        raise _fail(str(exc)) from None

    if as_json:
        records = [{key: row[key] for key in _OUTPUT_KEYS} for row in plan.iter_rows(named=True)]
        typer.echo(json.dumps(records, indent=2))
        return
    title = rule.name or "(unnamed rule)"
    kind = (
        f"REBALANCE_BUDGET {rule.rebalance.declared_type}"
        if rule.rebalance is not None
        else "CHANGE_BUDGET"
    )
    matched = int(plan.get_column("matched").sum())
    paused = int(plan.get_column("paused").sum())
    typer.echo(f"{title} — {kind}: {matched} of {plan.height} ad sets matched, {paused} paused")
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=1000,
        fmt_str_lengths=200,
    ):
        typer.echo(str(plan.select(*_OUTPUT_KEYS)))


if __name__ == "__main__":
    rules_app()
