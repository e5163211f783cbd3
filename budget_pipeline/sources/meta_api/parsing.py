"""Turn Marketing API pages into typed polars frames, or refuse them with a named reason.

Shapes handled (see the recorded fixtures in ``/work/shared/fixtures/meta-api``):

- an Insights edge page, ``{"data": [row, ...], "paging": {...}}`` (sync and async reads);
- objects with a nested ``insights`` edge (``fields=insights.time_increment(1){...}``), where an
  object without activity has no ``insights`` key at all;
- a multi-id read (``?ids=act_1,act_2``) keyed by id, each value a page of its own.

Every metric is a string and a zero metric is absent. One purchase is reported under several
aliases at once (``purchase``, ``omni_purchase``, ``offsite_conversion.fb_pixel_purchase``, ...):
the parser reads exactly one configured ``action_type`` and never sums aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.money import MoneyError, minor_factor
from budget_pipeline.sources.meta_api import schemas
from budget_pipeline.sources.meta_api.errors import PayloadError

HOURLY_BREAKDOWN = "hourly_stats_aggregated_by_advertiser_time_zone"
HOURLY_BREAKDOWNS = (HOURLY_BREAKDOWN, "hourly_stats_aggregated_by_audience_time_zone")

# The typed frame every Insights page becomes before it is conformed to contracts.INSIGHTS.
RAW_INSIGHTS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "date_stop": pl.Date(),
    "hour": pl.Int8(),  # null unless an hourly breakdown was requested
    "account_id": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "adset_id": pl.Utf8(),
    "ad_id": pl.Utf8(),
    "spend": pl.Float64(),  # major units
    "impressions": pl.Int64(),
    "reach": pl.Int64(),  # null when Meta did not send it (hourly rows never carry reach)
    "frequency": pl.Float64(),
    "clicks": pl.Int64(),
    "ctr": pl.Float64(),  # percent, as Meta sends it
    "conversions": pl.Float64(),  # the configured action_type from `actions`
    "purchase_value": pl.Float64(),  # the configured action_type from `action_values`
    "purchase_roas": pl.Float64(),
    "cost_per_conversion": pl.Float64(),
    "account_currency": pl.Utf8(),
}
MINIMUM_BUDGETS: dict[str, pl.DataType] = {
    "currency": pl.Utf8(),
    "min_daily_budget_imp": pl.Int64(),
    "min_daily_budget_video_views": pl.Int64(),
    "min_daily_budget_high_freq": pl.Int64(),
    "min_daily_budget_low_freq": pl.Int64(),
}
LEARNING_STAGE: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "in_learning": pl.Boolean(),
    "learning_status": pl.Utf8(),  # LEARNING | SUCCESS | FAIL | null (no info)
}

# Keys of an action entry that are not a breakdown of it (attribution windows, value).
_ACTION_PLAIN_KEY = re.compile(r"^(action_type|value|\d+d_(click|view)|dda|default|inline)$")


@dataclass(frozen=True)
class ConversionSpec:
    """Which ``action_type`` counts as the conversion: a default and per-campaign overrides.

    Pools choose their conversion event (``Pool.conversion_action``); the caller maps each
    pool's campaigns to it, since membership lives in the pools config, not at Meta.
    """

    default: str = "purchase"
    by_campaign: Mapping[str, str] = field(default_factory=dict)

    def for_campaign(self, campaign_id: str | None) -> str:
        if campaign_id is not None and campaign_id in self.by_campaign:
            return self.by_campaign[campaign_id]
        return self.default


@dataclass(frozen=True)
class RecordSet:
    """Records pulled out of a page, each with a label saying where in the page it sat."""

    records: list[dict[str, Any]]
    labels: list[str]


def insight_records(body: Mapping[str, Any], *, page: str) -> RecordSet:
    """The Insights rows of a page, whatever its shape (edge, nested edges, multi-id read)."""
    records: list[dict[str, Any]] = []
    labels: list[str] = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, Mapping):
            raise PayloadError(f"malformed page {page}: {where} is not an object", page=page)
        if "data" in node:
            data = node["data"]
            if not isinstance(data, list):
                raise PayloadError(
                    f"malformed page {page}: {where}data is {type(data).__name__}, not a list",
                    page=page,
                    field="data",
                )
            for i, item in enumerate(data):
                label = f"{where}data[{i}]"
                if not isinstance(item, Mapping):
                    raise PayloadError(
                        f"malformed page {page}: row {label} is {item!r}, not an object",
                        page=page,
                        row=len(records),
                        value=item,
                    )
                if "insights" in item:
                    walk(item["insights"], f"{label}.insights.")
                elif "date_start" in item or "date_stop" in item:
                    records.append(dict(item))
                    labels.append(label)
                # else: an object without an insights edge had no activity in the range
            return
        if "error" in node:
            raise PayloadError(f"malformed page {page}: {where}error {node['error']!r}", page=page)
        for key, value in node.items():  # a multi-id read keyed by object id
            if isinstance(value, Mapping):
                walk(value, f"{where}{key}.")

    walk(body, "")
    return RecordSet(records, labels)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, Decimal)):
        return format(value, "f") if isinstance(value, Decimal) else repr(value)
    return value if isinstance(value, str) else repr(value)


def _action_value(
    record: Mapping[str, Any], key: str, action_type: str, *, page: str, row: int, label: str
) -> str | None:
    """The value of ``action_type`` in the action array ``key``; None when absent."""
    entries = record.get(key)
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise PayloadError(
            f"malformed page {page}: row {row} ({label}), field {key!r}: {entries!r} is not a "
            "list of {action_type, value} objects",
            page=page,
            row=row,
            field=key,
            value=entries,
        )
    matches = [e for e in entries if e.get("action_type") == action_type]
    if not matches:
        return None
    plain = [e for e in matches if all(_ACTION_PLAIN_KEY.match(k) for k in e)]
    if plain:
        return _text(plain[0].get("value"))
    total = Decimal(0)
    for entry in matches:  # only broken-down entries (e.g. by action_reaction): add them up
        try:
            total += Decimal(str(entry.get("value")))
        except InvalidOperation:
            return _text(entry.get("value"))  # let the schema name the bad value
    return format(total, "f")


def _raw_insights_frame(
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    conversion: ConversionSpec,
    *,
    page: str,
) -> pl.DataFrame:
    cols: dict[str, list[str | None]] = {
        name: []
        for name in (
            *schemas.INSIGHT_ID_FIELDS,
            "date_start",
            "date_stop",
            "hour",
            *schemas.INSIGHT_NUMBER_FIELDS,
            *schemas.INSIGHT_COUNT_FIELDS,
            "account_currency",
        )
    }
    for i, rec in enumerate(records):
        action_type = conversion.for_campaign(_text(rec.get("campaign_id")))
        hour = next((rec[k] for k in HOURLY_BREAKDOWNS if k in rec), None)
        picked = {
            "conversions": _action_value(
                rec, "actions", action_type, page=page, row=i, label=labels[i]
            ),
            "purchase_value": _action_value(
                rec, "action_values", action_type, page=page, row=i, label=labels[i]
            ),
            "purchase_roas": _action_value(
                rec, "purchase_roas", _roas_type(action_type), page=page, row=i, label=labels[i]
            ),
            "cost_per_conversion": _action_value(
                rec, "cost_per_action_type", action_type, page=page, row=i, label=labels[i]
            ),
        }
        for name in cols:
            if name == "hour":
                cols[name].append(_text(hour))
            elif name in picked:
                cols[name].append(picked[name])
            else:
                cols[name].append(_text(rec.get(name)))
    return pl.DataFrame(cols, schema={name: pl.Utf8 for name in cols})


def _roas_type(action_type: str) -> str:
    # purchase_roas is reported under omni_purchase; other ROAS fields keep the action type.
    return "omni_purchase" if "purchase" in action_type else action_type


def _num(col: str, dtype: pl.DataType, *, zero: bool) -> pl.Expr:
    expr = pl.col(col).cast(pl.Float64, strict=True)
    if dtype == pl.Int64:
        expr = pl.col(col).cast(pl.Int64, strict=True)
    return (expr.fill_null(0) if zero else expr).alias(col)


def parse_insights(
    records: Sequence[Mapping[str, Any]] | RecordSet,
    *,
    page: str,
    level: str = "adset",
    hourly: bool = False,
    conversion: ConversionSpec | str = "purchase",
    currency: str | None = None,
    labels: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Insights records of one page → :data:`RAW_INSIGHTS`, or :class:`PayloadError`.

    Absent metrics become 0 (Meta omits zeros), except ``reach``, ``frequency``,
    ``purchase_roas`` and ``cost_per_conversion``, which stay null when not sent. With
    ``currency`` set, a row whose ``account_currency`` differs is refused.
    """
    if not isinstance(records, RecordSet):
        records = RecordSet(
            list(records),
            list(labels) if labels is not None else [str(i) for i in range(len(records))],
        )
    return parse_insight_pages(
        [(page, records)], level=level, hourly=hourly, conversion=conversion, currency=currency
    )


def parse_insight_pages(
    pages: Sequence[tuple[str, RecordSet]],
    *,
    level: str = "adset",
    hourly: bool = False,
    conversion: ConversionSpec | str = "purchase",
    currency: str | None = None,
) -> pl.DataFrame:
    """Several pages' Insights records → one :data:`RAW_INSIGHTS` frame, all or nothing.

    The records of all pages are validated together (one pandera pass); a failure names the
    page it came from, the row in that page, the field and the value.
    """
    spec = conversion if isinstance(conversion, ConversionSpec) else ConversionSpec(conversion)
    frames, row_pages, row_numbers, row_labels = [], [], [], []
    for label, recs in pages:
        frames.append(_raw_insights_frame(recs.records, recs.labels, spec, page=label))
        row_pages += [label] * len(recs.records)
        row_numbers += list(range(len(recs.records)))
        row_labels += recs.labels
    first_page = pages[0][0] if pages else "(no page)"
    if not frames:
        return contracts.empty(RAW_INSIGHTS)
    raw = pl.concat(frames, how="vertical")
    origin = {"row_labels": row_labels, "row_pages": row_pages, "row_numbers": row_numbers}
    schemas.validate_page(
        schemas.raw_insights_schema(level, hourly=hourly), raw, page=first_page, **origin
    )
    if currency is not None:
        bad = raw.with_row_index("_i").filter(
            pl.col("account_currency").is_not_null() & (pl.col("account_currency") != currency)
        )
        if bad.height:
            row = bad.row(0, named=True)
            i = row["_i"]
            raise PayloadError(
                f"malformed page {row_pages[i]}: row {row_numbers[i]} ({row_labels[i]}), field "
                f"'account_currency': {row['account_currency']!r} is not the account currency "
                f"{currency!r}",
                page=row_pages[i],
                row=row_numbers[i],
                field="account_currency",
                value=row["account_currency"],
            )
    typed = raw.select(
        pl.col("date_start").str.to_date("%Y-%m-%d").alias("date"),
        pl.col("date_stop").str.to_date("%Y-%m-%d"),
        pl.col("hour").str.slice(0, 2).cast(pl.Int8),
        *(pl.col(c) for c in schemas.INSIGHT_ID_FIELDS),
        _num("spend", pl.Float64, zero=True),
        _num("impressions", pl.Int64, zero=True),
        _num("reach", pl.Int64, zero=False),
        _num("frequency", pl.Float64, zero=False),
        _num("clicks", pl.Int64, zero=True),
        _num("ctr", pl.Float64, zero=True),
        _num("conversions", pl.Float64, zero=True),
        _num("purchase_value", pl.Float64, zero=True),
        _num("purchase_roas", pl.Float64, zero=False),
        _num("cost_per_conversion", pl.Float64, zero=False),
        pl.col("account_currency"),
    )
    return contracts.conform(typed, RAW_INSIGHTS)


# ---------------------------------------------------------------------------------------------
# Campaigns and ad sets


def _entity_records(
    records: Sequence[Mapping[str, Any]], entity_type: str, *, page: str
) -> pl.DataFrame:
    cols: dict[str, list[str | None]] = {
        k: []
        for k in (
            "id",
            "campaign_id",
            "name",
            "status",
            "effective_status",
            "daily_budget",
            "lifetime_budget",
            "budget_remaining",
            "end_time",
            "learning_status",
        )
    }
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise PayloadError(
                f"malformed page {page}: row {i} is {rec!r}, not an object", page=page, row=i
            )
        learning = rec.get("learning_stage_info")
        values = {
            **{k: _text(rec.get(k)) for k in cols},
            "campaign_id": _text(
                rec.get("campaign_id") if entity_type == "adset" else rec.get("id")
            ),
            "end_time": _text(rec.get("end_time") or rec.get("stop_time")),
            "learning_status": _text(learning.get("status"))
            if isinstance(learning, Mapping)
            else None,
        }
        for k in cols:
            cols[k].append(values[k])
    return pl.DataFrame(cols, schema={k: pl.Utf8 for k in cols})


def _end_date(end_time: str | None, tz: ZoneInfo) -> date | None:
    """Last local day of delivery: an end at local midnight means the day before."""
    if not end_time:
        return None
    text = end_time.replace("Z", "+0000")
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(tz)
    except ValueError:
        moment = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    if moment.time() == datetime.min.time():
        return moment.date() - timedelta(days=1)
    return moment.date()


def parse_entities(
    records: Sequence[Mapping[str, Any]],
    *,
    page: str,
    entity_type: str,
    currency: str,
    timezone: str,
) -> pl.DataFrame:
    """Campaign or ad-set objects → contracts.ENTITIES (deleted and archived ones dropped).

    ``status`` is ``ACTIVE`` only when Meta's ``effective_status`` is ACTIVE (an ad set of a
    paused campaign is not delivering); a budget of ``"0"`` or none means no budget of that kind.
    """
    if entity_type not in ("campaign", "adset"):
        raise ValueError(f"entity_type must be 'campaign' or 'adset', got {entity_type!r}")
    try:
        minor_factor(currency)
    except MoneyError as exc:
        raise PayloadError(f"{page}: {exc}", page=page, field="currency", value=currency) from None
    raw = _entity_records(records, entity_type, page=page)
    schemas.validate_page(schemas.raw_entities_schema(entity_type), raw, page=page)
    tz = ZoneInfo(timezone)
    rows = []
    for i, rec in enumerate(raw.iter_rows(named=True)):
        effective = rec["effective_status"] or rec["status"] or "PAUSED"
        if effective in ("DELETED", "ARCHIVED"):
            continue
        daily = int(rec["daily_budget"]) if rec["daily_budget"] else 0
        lifetime = int(rec["lifetime_budget"]) if rec["lifetime_budget"] else 0
        if daily and lifetime:
            raise PayloadError(
                f"malformed page {page}: row {i}, {entity_type} {rec['id']} has both "
                f"daily_budget {daily} and lifetime_budget {lifetime}",
                page=page,
                row=i,
                field="lifetime_budget",
                value=rec["lifetime_budget"],
            )
        budget_type = "daily" if daily else "lifetime" if lifetime else None
        remaining = rec["budget_remaining"]
        rows.append(
            {
                "entity_id": rec["id"],
                "entity_type": entity_type,
                "campaign_id": rec["campaign_id"],
                "name": rec["name"],
                "status": "ACTIVE" if effective == "ACTIVE" else "PAUSED",
                "budget_type": budget_type,
                "daily_budget": daily if budget_type == "daily" else None,
                "lifetime_budget": lifetime if budget_type == "lifetime" else None,
                "budget_remaining": int(remaining)
                if budget_type == "lifetime" and remaining
                else None,
                "end_date": _end_date(rec["end_time"], tz) if budget_type == "lifetime" else None,
                "currency": currency,
            }
        )
    frame = pl.DataFrame(rows, schema=contracts.ENTITIES)
    return schemas.validate_page(schemas.ENTITIES_SCHEMA, frame, page=page)


def parse_learning_stage(records: Sequence[Mapping[str, Any]], *, page: str) -> pl.DataFrame:
    """Ad sets' ``learning_stage_info`` → (entity_id, in_learning, learning_status)."""
    raw = _entity_records(records, "adset", page=page)
    schemas.validate_page(schemas.raw_entities_schema("adset"), raw, page=page)
    return raw.select(
        pl.col("id").alias("entity_id"),
        (pl.col("learning_status") == "LEARNING").fill_null(False).alias("in_learning"),
        pl.col("learning_status"),
    )


def parse_minimum_budgets(records: Sequence[Mapping[str, Any]], *, page: str) -> pl.DataFrame:
    """``/act_{id}/minimum_budgets`` rows → :data:`MINIMUM_BUDGETS` (minor units)."""
    cols = {
        k: [_text(r.get(k)) if isinstance(r, Mapping) else None for r in records]
        for k in MINIMUM_BUDGETS
    }
    raw = pl.DataFrame(cols, schema={k: pl.Utf8 for k in cols})
    schemas.validate_page(schemas.raw_minimum_budgets_schema(), raw, page=page)
    return raw.select(
        pl.col("currency"), *(pl.col(c).cast(pl.Int64) for c in list(MINIMUM_BUDGETS)[1:])
    )


# ---------------------------------------------------------------------------------------------
# Reach for hourly rows


def spread_daily_reach(hourly: pl.DataFrame, daily_reach: pl.DataFrame) -> pl.DataFrame:
    """Fill ``reach`` of hourly rows from each (ad set, day)'s daily reach.

    Meta does not return ``reach`` with hourly breakdowns (reach counts unique people, which do
    not add up over hours). The day's reach is split over that day's hours in proportion to
    their impressions, with the largest-remainder rule (ties to the earlier hour), so the hours
    of a day sum exactly to Meta's daily reach and each stays an integer ≤ its impressions.
    A day with no daily reach row gets 0. ``daily_reach`` has adset_id, date, reach.
    """
    keys = ["adset_id", "date"]
    day = daily_reach.group_by(keys).agg(pl.col("reach").fill_null(0).max().alias("_day_reach"))
    frame = (
        hourly.drop("reach", strict=False)
        .with_row_index("_order")
        .join(day, on=keys, how="left")
        .with_columns(pl.col("_day_reach").fill_null(0).cast(pl.Int64))
        .with_columns(
            pl.when(pl.col("impressions").sum().over(keys) > 0)
            .then(pl.col("impressions"))
            .otherwise(1)
            .cast(pl.Int64)
            .alias("_w")
        )
        .with_columns(pl.col("_w").sum().over(keys).alias("_wsum"))
        .with_columns(
            (pl.col("_day_reach") * pl.col("_w") // pl.col("_wsum")).alias("_base"),
            (pl.col("_day_reach") * pl.col("_w") % pl.col("_wsum")).alias("_rem"),
        )
        .with_columns((pl.col("_day_reach") - pl.col("_base").sum().over(keys)).alias("_left"))
        .sort([*keys, "_rem", "hour"], descending=[False, False, True, False])
        .with_columns(pl.int_range(pl.len()).over(keys).alias("_pos"))
        .with_columns(
            (pl.col("_base") + (pl.col("_pos") < pl.col("_left")).cast(pl.Int64)).alias("reach")
        )
        .sort("_order")
    )
    return frame.drop("_order", "_day_reach", "_w", "_wsum", "_base", "_rem", "_left", "_pos")


def rows_to_insights(raw: pl.DataFrame) -> pl.DataFrame:
    """:data:`RAW_INSIGHTS` hourly ad-set rows (reach filled) → contracts.INSIGHTS, validated."""
    frame = contracts.conform(raw, contracts.INSIGHTS)
    return schemas.validate_page(schemas.INSIGHTS_SCHEMA, frame, page="hourly insights")
