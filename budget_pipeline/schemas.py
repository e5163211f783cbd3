"""pandera schemas for the frames that enter the warehouse.

Validation is eager (a LazyFrame would only check the schema), and failures are re-raised as
:class:`InsightsValidationError` naming the row, the column and the bad value.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

_ID = r"^\d{1,32}$"


class InsightsSchema(pa.DataFrameModel):
    """Hourly ad-set Insights (contracts.INSIGHTS) as they enter ``raw_insights``."""

    date: pl.Date
    hour: pl.Int8 = pa.Field(ge=0, le=23)
    campaign_id: str = pa.Field(str_matches=_ID)
    adset_id: str = pa.Field(str_matches=_ID)
    spend: pl.Float64 = pa.Field(ge=0)
    impressions: pl.Int64 = pa.Field(ge=0)
    reach: pl.Int64 = pa.Field(ge=0)
    clicks: pl.Int64 = pa.Field(ge=0)
    conversions: pl.Float64 = pa.Field(ge=0)
    purchase_value: pl.Float64 = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = False
        unique = ["adset_id", "date", "hour"]  # noqa: RUF012 (pandera reads a list)

    @pa.dataframe_check
    def finite_numbers(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.all_horizontal(pl.col("spend", "conversions", "purchase_value").is_finite()).alias(
                "finite"
            )
        )


class InsightsValidationError(ValueError):
    """A batch of Insights that must not be written; the message names row, column and value."""


def validate_insights(frame: pl.DataFrame) -> pl.DataFrame:
    """Validate eagerly; on failure raise naming up to five bad rows with their column and value."""
    try:
        return InsightsSchema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise InsightsValidationError(_describe(exc.failure_cases, frame)) from None
    except SchemaError as exc:  # pragma: no cover - lazy=True reports SchemaErrors
        raise InsightsValidationError(str(exc)) from None


def _describe(cases: pl.DataFrame, frame: pl.DataFrame) -> str:
    lines = [f"{cases.height} invalid value(s) in {frame.height} Insights rows:"]
    for case in cases.head(5).iter_rows(named=True):
        column = case.get("column") or "(frame)"
        index = case.get("index")
        where = f"row {index}" if index is not None else "schema"
        ident = ""
        if index is not None and "adset_id" in frame.columns and index < frame.height:
            row = frame.row(index, named=True)
            ident = f" (adset_id={row.get('adset_id')!r}, date={row.get('date')}, hour={row.get('hour')})"
        lines.append(
            f"  - {where}{ident}, column {column!r}: value {case.get('failure_case')!r} "
            f"fails {case.get('check')}"
        )
    return "\n".join(lines)
