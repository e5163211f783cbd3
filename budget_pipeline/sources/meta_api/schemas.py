"""pandera schemas for what Meta sends (raw strings) and what the client hands on (typed frames).

Meta sends every Insights metric and every budget as a JSON string (``"spend": "11.97"``,
``"daily_budget": "5000"``) and omits a metric that is zero. The parser lays each page out as a
frame of raw strings, one row per record, and validates it *before* any cast, so a failure can
name the row, the field and the value exactly as Meta sent it. :func:`validate_page` turns
pandera's failure report into a :class:`PayloadError` and nothing of the page is kept.

Values too large to be true are refused the same way, before any cast could overflow: a budget
above :data:`~budget_pipeline.money.MAX_AMOUNT_MINOR` minor units, a metric or count above
:data:`MAX_VALUE` (``"1e400"`` would become inf, a 23-digit count would not fit int64).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from budget_pipeline import contracts
from budget_pipeline.money import KNOWN_CURRENCIES, MAX_AMOUNT_MINOR
from budget_pipeline.sources.meta_api.errors import PayloadError

DIGITS = r"^\d+$"
NUMBER = r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"
WHOLE = r"^-?\d+$"
HOURLY_RANGE = r"^([01]\d|2[0-3]):00:00 - ([01]\d|2[0-3]):59:59$"
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{4}|Z)?$"

# effective_status values of campaigns and ad sets (Marketing API reference).
EFFECTIVE_STATUSES = frozenset(
    {
        "ACTIVE", "PAUSED", "DELETED", "ARCHIVED", "IN_PROCESS", "WITH_ISSUES",
        "CAMPAIGN_PAUSED", "ADSET_PAUSED", "PENDING_REVIEW", "DISAPPROVED", "PREAPPROVED",
        "PENDING_BILLING_INFO",
    }
)  # fmt: skip
STATUSES = frozenset({"ACTIVE", "PAUSED", "DELETED", "ARCHIVED"})
LEARNING_STATUSES = frozenset({"LEARNING", "SUCCESS", "FAIL"})
# The largest metric or count accepted from an Insights page (spend, impressions, value, ...).
MAX_VALUE = 10**15


def _not_negative() -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(~pl.col(data.key).str.starts_with("-")),
        name="not_negative",
        error="is negative",
    )


def _at_most(limit: int, what: str) -> pa.Check:
    """The number in the string is at most ``limit`` (text that is no number is left to the
    format check, so it is reported once)."""
    return pa.Check(
        lambda data: data.lazyframe.select(
            (pl.col(data.key).cast(pl.Float64, strict=False).abs() <= limit).fill_null(True)
        ),
        name="at_most",
        error=f"is above {limit:,}, the largest {what}",
    )


def _is_date() -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(
            pl.col(data.key).str.to_date("%Y-%m-%d", strict=False).is_not_null()
        ),
        name="is_date",
        error="is not a date YYYY-MM-DD",
    )


def _id(required: bool) -> pa.Column:
    return pa.Column(
        pl.Utf8,
        nullable=not required,
        checks=pa.Check.str_matches(DIGITS, error="is not a numeric id"),
    )


def _number() -> pa.Column:
    return pa.Column(
        pl.Utf8,
        nullable=True,
        checks=[
            pa.Check.str_matches(NUMBER, error="is not a number"),
            _not_negative(),
            _at_most(MAX_VALUE, "metric value accepted"),
        ],
    )


def _count() -> pa.Column:
    return pa.Column(
        pl.Utf8,
        nullable=True,
        checks=[
            pa.Check.str_matches(WHOLE, error="is not a whole number"),
            _not_negative(),
            _at_most(MAX_VALUE, "count accepted"),
        ],
    )


def _budget() -> pa.Column:
    """A budget as Meta sends it: a string of whole minor units, within int64 with room."""
    return pa.Column(
        pl.Utf8,
        nullable=True,
        checks=[
            pa.Check.str_matches(WHOLE, error="is not whole minor units"),
            _not_negative(),
            _at_most(MAX_AMOUNT_MINOR, "budget in minor units"),
        ],
    )


def _currency() -> pa.Column:
    return pa.Column(
        pl.Utf8,
        nullable=True,
        checks=pa.Check.isin(sorted(KNOWN_CURRENCIES), error="is not a known currency"),
    )


# Which ids an Insights row must carry at each level.
LEVEL_IDS: dict[str, tuple[str, ...]] = {
    "account": ("account_id",),
    "campaign": ("campaign_id",),
    "adset": ("campaign_id", "adset_id"),
    "ad": ("ad_id",),
}
INSIGHT_ID_FIELDS = ("account_id", "campaign_id", "adset_id", "ad_id")
INSIGHT_NUMBER_FIELDS = (
    "spend",
    "ctr",
    "frequency",
    "conversions",
    "purchase_value",
    "purchase_roas",
    "cost_per_conversion",
)
INSIGHT_COUNT_FIELDS = ("impressions", "reach", "clicks")


def raw_insights_schema(level: str, *, hourly: bool) -> pa.DataFrameSchema:
    """Raw Insights rows at ``level``; ``hourly`` rows must carry the hour-of-day breakdown."""
    if level not in LEVEL_IDS:
        raise ValueError(f"unknown insights level {level!r}; expected one of {sorted(LEVEL_IDS)}")
    required = LEVEL_IDS[level]
    columns: dict[str, pa.Column] = {f: _id(f in required) for f in INSIGHT_ID_FIELDS}
    columns["date_start"] = pa.Column(pl.Utf8, nullable=False, checks=_is_date())
    columns["date_stop"] = pa.Column(pl.Utf8, nullable=False, checks=_is_date())
    columns["hour"] = pa.Column(
        pl.Utf8,
        nullable=not hourly,
        checks=pa.Check.str_matches(
            HOURLY_RANGE, error="is not an hourly range HH:00:00 - HH:59:59"
        ),
    )
    columns |= {f: _number() for f in INSIGHT_NUMBER_FIELDS}
    columns |= {f: _count() for f in INSIGHT_COUNT_FIELDS}
    columns["account_currency"] = _currency()
    return pa.DataFrameSchema(columns, strict=False, name=f"raw {level} insights")


def raw_entities_schema(entity_type: str) -> pa.DataFrameSchema:
    """Raw campaign or ad-set objects: ids, status and budgets as minor-unit strings."""
    columns = {
        "id": _id(True),
        "campaign_id": _id(entity_type == "adset"),
        "name": pa.Column(pl.Utf8, nullable=True),
        "status": pa.Column(
            pl.Utf8, nullable=True, checks=pa.Check.isin(sorted(STATUSES), error="is not a status")
        ),
        "effective_status": pa.Column(
            pl.Utf8,
            nullable=True,
            checks=pa.Check.isin(sorted(EFFECTIVE_STATUSES), error="is not an effective_status"),
        ),
        "daily_budget": _budget(),
        "lifetime_budget": _budget(),
        "budget_remaining": _budget(),
        "end_time": pa.Column(
            pl.Utf8,
            nullable=True,
            checks=pa.Check.str_matches(TIMESTAMP, error="is not a timestamp"),
        ),
        "learning_status": pa.Column(
            pl.Utf8,
            nullable=True,
            checks=pa.Check.isin(sorted(LEARNING_STATUSES), error="is not a learning status"),
        ),
    }
    return pa.DataFrameSchema(columns, strict=False, name=f"raw {entity_type}s")


def raw_minimum_budgets_schema() -> pa.DataFrameSchema:
    amount = _budget()
    return pa.DataFrameSchema(
        {
            "currency": pa.Column(
                pl.Utf8,
                nullable=False,
                checks=pa.Check.isin(sorted(KNOWN_CURRENCIES), error="is not a known currency"),
            ),
            "min_daily_budget_imp": amount,
            "min_daily_budget_video_views": amount,
            "min_daily_budget_high_freq": amount,
            "min_daily_budget_low_freq": amount,
        },
        strict=False,
        name="raw minimum budgets",
    )


def _typed(schema: dict[str, pl.DataType], checks: dict[str, list[pa.Check]], name: str):
    return pa.DataFrameSchema(
        {
            col: pa.Column(
                dtype, nullable=col not in checks.get("_required", ()), checks=checks.get(col)
            )
            for col, dtype in schema.items()
        },
        strict=True,
        ordered=True,
        name=name,
    )


_GE0 = [pa.Check.ge(0)]
# contracts.INSIGHTS as handed to the engine: every row identified, nothing negative.
INSIGHTS_SCHEMA = _typed(
    contracts.INSIGHTS,
    {
        "_required": ("date", "hour", "campaign_id", "adset_id", "spend", "impressions"),
        "hour": [pa.Check.in_range(0, 23)],
        "spend": _GE0,
        "impressions": _GE0,
        "reach": _GE0,
        "clicks": _GE0,
        "conversions": _GE0,
        "purchase_value": _GE0,
    },
    "insights",
)
ENTITIES_SCHEMA = _typed(
    contracts.ENTITIES,
    {
        "_required": ("entity_id", "entity_type", "campaign_id", "status", "currency"),
        "entity_type": [pa.Check.isin(["campaign", "adset"])],
        "status": [pa.Check.isin(["ACTIVE", "PAUSED"])],
        "budget_type": [pa.Check.isin(["daily", "lifetime"])],
        "daily_budget": _GE0,
        "lifetime_budget": _GE0,
        "budget_remaining": _GE0,
    },
    "entities",
)


def validate_page(
    schema: pa.DataFrameSchema,
    frame: pl.DataFrame,
    *,
    page: str,
    row_labels: Sequence[str] | None = None,
    row_pages: Sequence[str] | None = None,
    row_numbers: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Validate a frame of records; on failure raise :class:`PayloadError` naming the page, the
    row, the field and the value.

    A frame may hold several pages' records: ``row_pages`` and ``row_numbers`` then give each
    frame row's page label and row number within that page (default: ``page`` and the frame
    row); ``row_labels`` say where in the page the record sat (e.g. ``data[3]``).
    """
    try:
        return schema.validate(frame, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        origin = _Origin(page, row_labels, row_pages, row_numbers)
        raise _payload_error(exc, origin) from None


@dataclass(frozen=True)
class _Origin:
    page: str
    labels: Sequence[str] | None
    pages: Sequence[str] | None
    numbers: Sequence[int] | None

    def page_of(self, idx: int | None) -> str:
        if idx is not None and self.pages and 0 <= idx < len(self.pages):
            return self.pages[idx]
        return self.page

    def row_of(self, idx: int) -> int:
        if self.numbers and 0 <= idx < len(self.numbers):
            return int(self.numbers[idx])
        return idx

    def describe(self, idx: int) -> str:
        row = self.row_of(idx)
        if self.labels and 0 <= idx < len(self.labels) and self.labels[idx] != str(row):
            return f"row {row} ({self.labels[idx]})"
        return f"row {row}"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


def _payload_error(exc: SchemaErrors | SchemaError, origin: _Origin) -> PayloadError:
    cases = exc.failure_cases if isinstance(exc, SchemaErrors) else None
    if cases is None or not isinstance(cases, pl.DataFrame) or cases.height == 0:
        return PayloadError(f"malformed page {origin.page}: {exc}", page=origin.page)
    cases = cases.sort("index", nulls_last=True)
    first = cases.row(0, named=True)
    page = origin.page_of(first["index"])
    lines = []
    for case in cases.head(5).iter_rows(named=True):
        idx, column, value, check = (
            case["index"],
            case["column"],
            case["failure_case"],
            case["check"],
        )
        where = "every row" if idx is None else origin.describe(idx)
        if idx is not None and origin.page_of(idx) != page:
            where = f"{origin.page_of(idx)} {where}"
        what = "is missing" if check == "not_nullable" else str(check)
        shown = "absent" if value is None or value == "null" else _shorten(repr(value))
        lines.append(f"{where}, field {column!r}: {shown} {what}")
    more = f" (and {cases.height - 5} more)" if cases.height > 5 else ""
    value = first["failure_case"]
    return PayloadError(
        f"malformed page {page}: " + "; ".join(lines) + more,
        page=page,
        row=None if first["index"] is None else origin.row_of(first["index"]),
        field=first["column"],
        value=None if value == "null" else value,
    )
