"""Meta's own ad rules (``adrules_library`` JSON), evaluated offline on a frame of ad sets.

A user can backtest a native ``REBALANCE_BUDGET`` or ``CHANGE_BUDGET`` rule before deploying
it (SPEC §6), or give it to a pool as its policy (``policy: meta_rule`` in the pools file).
Everything here is pure: a parsed :class:`MetaRule` and a polars frame in, a plan frame out.

Rule shape (as Meta documents it)
---------------------------------
``{"name": ..., "evaluation_spec": {"evaluation_type": "SCHEDULE", "filters": [...]},
"execution_spec": {"execution_type": ..., "execution_options": [...]}}``, optionally with
``schedule_spec``, ``status`` and the read-only ``id``/``account_id``/``created_*``/
``updated_time`` keys Meta returns. The two specs may also be JSON strings, as they are sent
with ``curl -F``. Anything else — an unknown key, operator, execution type, option or value —
raises :class:`RuleError` naming it and its JSON path; nothing is silently ignored.
``schedule_spec`` and ``user_ids`` are kept on the rule but do not change a plan (they say
*when* the rule runs and *who* is emailed).

Filters
-------
Every filter is ``{"field", "operator", "value"}``; filters are ANDed. Operators (Meta's list):
GREATER_THAN, LESS_THAN, EQUAL, NOT_EQUAL (number; EQUAL/NOT_EQUAL also take a string on a text
field), IN_RANGE / NOT_IN_RANGE (``[low, high]``, both ends inclusive), IN / NOT_IN (a list),
CONTAIN / NOT_CONTAIN (a literal, case-sensitive substring of a text field), ANY / ALL / NONE (a
list, on a list-valued field: it shares any / all / none of the values; on a scalar field ANY is
IN, NONE is NOT_IN and ALL means every listed value equals the field). An ad set whose value is
missing (null) never passes a filter, whatever the operator.

Fields and frame columns (the convention of this module)
-------------------------------------------------------
* ``entity_type`` — every row is an ad set (``ADSET``); REBALANCE_BUDGET and CHANGE_BUDGET apply
  to ad sets only, so a filter that excludes ADSET is rejected.
* ``time_preset`` — the rule's insights window (``EQUAL`` only), e.g. ``LIFETIME``, ``LAST_7D``.
* ``id`` / ``adset.id`` → column ``adset_id``; ``campaign.id`` → ``campaign_id``;
  ``name`` / ``adset.name`` → ``name`` (or ``adset_name``); ``campaign.name`` → ``campaign_name``.
* Metadata columns (``daily_budget``, ``lifetime_budget``, ``lifetime_spend``, …) are used as is
  and, as in Meta, take no time-preset prefix.
* Any other field is an Insights metric. Meta documents the prefixed form
  ``{object_level_prefix?}{attribution_window_prefix?}{time_preset_prefix?}{field_name}``, e.g.
  ``adset.yesterday_spent``, ``last_7d_spent``, ``lifetime_spent`` (time-preset prefixes are the
  lowercase preset plus ``_``). Here ``adset.`` is accepted (our objects are ad sets); the
  ``campaign.``/``ad.`` object levels and attribution-window prefixes (``28d_view_1d_click:``)
  are rejected, because a frame of ad sets has no such values. ``LAST_7_DAYS:spent`` is not
  Meta's syntax and is rejected with a pointer to ``last_7_days_spent``.
* A metric for time preset ``P`` is read from column ``<p>__<metric>`` (``p`` = the preset in
  lowercase, e.g. ``last_7d__spent``, ``lifetime__cost_per_purchase_fb``). A field without a
  prefix uses the rule's ``time_preset``; for that preset (or when the rule has none) a plain
  ``<metric>`` column is also accepted, and is taken to be over the rule's window. A prefixed
  field whose preset differs from the rule's needs its ``<p>__<metric>`` column. A field that
  resolves to no column is an error naming the field and the columns tried.
* ``aggregate(...)`` fields, ``aggregation_id`` and formula fields are not supported.

REBALANCE_BUDGET (``rebalance_spec``), exactly SPEC §6
-----------------------------------------------------
Ad sets are split into buckets: budget type (daily | lifetime), and also campaign unless
``is_cross_campaign`` is true. In each bucket an ad set's *available* amount is its daily
budget, or for a lifetime budget its leftover ``lifetime_budget - lifetime_spend``; a lifetime
ad set's new ``lifetime_budget`` is ``lifetime_spend + new leftover``. Every split uses
:func:`~budget_pipeline.money.largest_remainder_split`, in exact integer arithmetic: each part
is the floor of its exact share plus at most one unit, and parts add up to the minor unit
whatever the size of the budgets (the total of a frame's budgets must fit int64).

*Weight* of an ad set: its ``target_field`` value (exactly, as a float64), or with
``is_inverse`` the float64 ``smallest value / value`` (proportional to ``1 / value``); a null
or non-positive value weighs 0 (under ``is_inverse`` a zero cost cannot be inverted). Negative
values are an error. If every weight in a split is 0 the split is even. *Ranking* (for
``target_count`` K and for the order of remainders): weight high to low, then ``adset_id``.

* ``EVEN`` — matched ad sets are paused and keep their stored budget (``paused``, new == old);
  the donated total D (sum of their available amounts) is split evenly over the recipients: the
  unmatched ad sets, or the top K of them.
* ``PROPORTIONAL`` — as EVEN, but recipients get shares in proportion to their weight.
  ``INVERSE_PROPORTIONAL`` (used in Meta's own example) is PROPORTIONAL with ``is_inverse``.
* ``NO_PAUSE_PROPORTIONAL`` — nothing is paused. D is shared in proportion to weight across
  *all* ad sets of the bucket (the top K of them when ``target_count`` is set); a matched ad
  set's new available amount is only its share of D, an unmatched one adds its share to what it
  had (so recipients never lose budget). An ad set outside the top K gets no share: a matched one
  ends at 0, an unmatched one is unchanged.
* ``MATCHED_ONLY_PROPORTIONAL`` — nothing is paused; only matched ad sets take part: their total
  is shared among them (the top K of them) in proportion to weight; a matched ad set outside the
  top K ends at 0. A well-performing ad set can lose budget. Unmatched ad sets are unchanged.
* A bucket without matched ad sets is unchanged. For EVEN/PROPORTIONAL a bucket without
  recipients (every ad set matched) is unchanged too: nothing moves, nothing is paused.

Conservation, per bucket: with *effective available* = 0 for a paused ad set (its budget was
donated) and the new available amount otherwise, ``sum(effective new) == sum(old available)``.
For EVEN/PROPORTIONAL that reads: the recipients' increases add up exactly to the paused ad
sets' available amounts (daily budgets or lifetime leftovers); for the other two types the
bucket's total budget is unchanged. See :func:`bucket_conservation`.

CHANGE_BUDGET (``change_spec``, ``action_frequency``)
-----------------------------------------------------
Only matched ad sets change; the stored budget (``daily_budget`` or ``lifetime_budget``) moves by
``amount``: ``ACCOUNT_CURRENCY`` = integer minor units, ``PERCENTAGE`` = percent of the budget,
rounded half away from zero to a minor unit (in exact fractions). With ``target_field`` (no
``unit``), ``amount`` is the target value of that metric and the budget is scaled by the
proportional difference: for a cost metric (``cost_per_*``, ``cpa``, ``cpc``, ``cpm``,
``cpp``) by ``amount / current`` — Meta's worked example: target 5.0, current 4.0 → +25 % —
and for any other metric (e.g. ROAS, where higher is better) by ``current / amount``; an ad
set with a null or non-positive current value is skipped. ``limit`` (minor units) is, without
``target_field``, one number: the maximum budget when ``amount`` increases, the minimum when it
decreases; with ``target_field`` it is a range ``[min, max]``. A limit never reverses a
change: a budget already beyond it stays where it is. A budget never goes below 0, and a
lifetime budget never below its ``lifetime_spend``; a new budget that would not fit int64
minor units is a :class:`RuleError` naming the ad set.
``action_frequency`` (minutes): a matched ad set whose ``last_applied`` time is less than that
many minutes before ``now`` is skipped with the reason. ``execution_count_limit`` is rejected
(it needs the rule's execution history).

Output of :func:`apply_rule`: one row per input ad set, input order, columns :data:`PLAN_SCHEMA`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from budget_pipeline.money import INT64_MAX, largest_remainder_split

__all__ = [
    "OPERATORS",
    "PLAN_SCHEMA",
    "REBALANCE_TYPES",
    "TIME_PRESETS",
    "AdsetFrameError",
    "ChangeSpec",
    "FieldRef",
    "Filter",
    "MetaRule",
    "RebalanceSpec",
    "RuleError",
    "apply_rule",
    "bucket_conservation",
    "load_rule",
    "match_filters",
    "parse_rule",
    "referenced_columns",
    "resolve_column",
    "validate_adsets",
]

OPERATORS = (
    "GREATER_THAN",
    "LESS_THAN",
    "EQUAL",
    "NOT_EQUAL",
    "IN_RANGE",
    "NOT_IN_RANGE",
    "IN",
    "NOT_IN",
    "CONTAIN",
    "NOT_CONTAIN",
    "ANY",
    "ALL",
    "NONE",
)
REBALANCE_TYPES = ("EVEN", "PROPORTIONAL", "NO_PAUSE_PROPORTIONAL", "MATCHED_ONLY_PROPORTIONAL")
# Accepted as an alias: Meta's own rebalance example uses it (PROPORTIONAL + is_inverse).
INVERSE_PROPORTIONAL = "INVERSE_PROPORTIONAL"
EXECUTION_TYPES = ("REBALANCE_BUDGET", "CHANGE_BUDGET")
CHANGE_UNITS = ("ACCOUNT_CURRENCY", "PERCENTAGE")

# Meta's time presets (the evaluation-spec-filters guide lists them as lowercase prefixes with
# a trailing "_"; the `time_preset` filter takes the same names in upper case).
TIME_PRESETS = (
    "LIFETIME",
    "TODAY",
    "YESTERDAY",
    "LAST_2_DAYS",
    "LAST_3_DAYS",
    "LAST_7_DAYS",
    "LAST_14_DAYS",
    "LAST_28_DAYS",
    "LAST_30_DAYS",
    "THIS_MONTH",
    "THIS_WEEK_MON_TODAY",
    "THIS_WEEK_SUN_TODAY",
    "LAST_2D",
    "LAST_3D",
    "LAST_7D",
    "LAST_14D",
    "LAST_28D",
    "LAST_30D",
    "LAST_ND_14_8",
    "LAST_ND_30_8",
    "LAST_ND_60_8",
    "LAST_ND_120_8",
    "LAST_ND_120_20",  # as spelled in Meta's table ("Last 120 days to Last 28 days")
    "LAST_ND_180_8",
    "LAST_ND_LIFETIME_8",
    "LAST_ND_60_29",
    "LAST_ND_120_29",
    "LAST_ND_180_29",
    "LAST_ND_LIFETIME_29",
)
# Longest first, so "last_7_days_" wins over a shorter prefix of the same text.
_PRESET_PREFIXES = sorted((p.lower() + "_" for p in TIME_PRESETS), key=len, reverse=True)
_ATTRIBUTION_PREFIX = re.compile(
    r"^(account_default|default|inline|\d+d_(view|click)(_\d+d_click)?):"
)
_COST_METRIC = re.compile(r"^(cost_per_.+|cpa|cpc|cpm|cpp)$")

# Metadata filter fields → candidate frame columns (first present wins).
_METADATA_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("adset_id",),
    "adset.id": ("adset_id",),
    "campaign.id": ("campaign_id",),
    "name": ("name", "adset_name"),
    "adset.name": ("name", "adset_name"),
    "campaign.name": ("campaign_name",),
}
# Frame columns that are metadata, not Insights: no time-preset prefix, no per-preset column.
_METADATA_COLUMNS = frozenset(
    {
        "adset_id",
        "campaign_id",
        "name",
        "adset_name",
        "campaign_name",
        "daily_budget",
        "lifetime_budget",
        "lifetime_spend",
        "bid_amount",
        "status",
        "effective_status",
    }
)
_READ_ONLY_RULE_KEYS = frozenset(
    {"id", "account_id", "created_by", "created_time", "updated_by", "updated_time"}
)

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "adset_id": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "budget_type": pl.Utf8(),  # "daily" | "lifetime"
    "old_budget": pl.Int64(),  # stored budget before, minor units
    "new_budget": pl.Int64(),  # stored budget after (== old_budget when paused or unchanged)
    "paused": pl.Boolean(),
    "matched": pl.Boolean(),  # passed the rule's filters
    "reason": pl.Utf8(),
}

REQUIRED_COLUMNS = ("adset_id", "campaign_id", "daily_budget", "lifetime_budget", "lifetime_spend")


class RuleError(ValueError):
    """A rule that cannot be evaluated as Meta defines it; the message names the JSON path."""


class AdsetFrameError(ValueError):
    """An ad-set frame that cannot be planned (missing column, budget in both or neither, …)."""


# --------------------------------------------------------------------------- the parsed rule


@dataclass(frozen=True)
class FieldRef:
    """A filter or target field, resolved against a frame by :func:`resolve_column`.

    ``kind`` is ``"metadata"`` (``name`` holds candidate columns joined by ``|``) or
    ``"metric"`` (``name`` is the bare Insights metric, ``preset`` its prefix preset if any).
    """

    raw: str
    kind: Literal["metadata", "metric"]
    name: str
    preset: str | None = None


@dataclass(frozen=True)
class Filter:
    field: FieldRef
    operator: str
    value: Any
    path: str


@dataclass(frozen=True)
class RebalanceSpec:
    type: str  # one of REBALANCE_TYPES (INVERSE_PROPORTIONAL normalised to PROPORTIONAL)
    target_field: FieldRef | None = None
    target_count: int | None = None
    is_inverse: bool = False
    is_cross_campaign: bool = False
    declared_type: str = ""


@dataclass(frozen=True)
class ChangeSpec:
    amount: Decimal
    unit: str | None = None  # ACCOUNT_CURRENCY | PERCENTAGE; None with target_field
    limit: int | tuple[int, int] | None = None  # minor units
    target_field: FieldRef | None = None


@dataclass(frozen=True)
class MetaRule:
    execution_type: str  # REBALANCE_BUDGET | CHANGE_BUDGET
    filters: tuple[Filter, ...]
    time_preset: str | None = None
    rebalance: RebalanceSpec | None = None
    change: ChangeSpec | None = None
    action_frequency_minutes: int | None = None
    name: str | None = None
    status: str | None = None
    schedule_spec: Mapping[str, Any] | None = None
    user_ids: tuple[Any, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


# --------------------------------------------------------------------------------- parsing


def load_rule(path: str | Path) -> MetaRule:
    """Read a rule JSON file (``adrules_library`` shape) and :func:`parse_rule` it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{p}: cannot read rule file: {exc.strerror or exc}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleError(
            f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    try:
        return parse_rule(obj)
    except RuleError as exc:
        raise RuleError(f"{p}: {exc}") from exc


def parse_rule(obj: Mapping[str, Any]) -> MetaRule:
    """Validate a rule dict and return a :class:`MetaRule`, or raise :class:`RuleError`."""
    if not isinstance(obj, Mapping):
        raise RuleError(f"rule: expected a JSON object, got {type(obj).__name__}")
    allowed = {"name", "status", "evaluation_spec", "execution_spec", "schedule_spec"}
    _reject_unknown(obj, allowed | _READ_ONLY_RULE_KEYS, "")
    for key in ("evaluation_spec", "execution_spec"):
        if key not in obj:
            raise RuleError(f"{key}: required")
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise RuleError(f"name: expected a string, got {name!r}")
    status = obj.get("status")
    if status is not None and status not in ("ENABLED", "DISABLED", "DELETED", "HAS_ISSUES"):
        raise RuleError(f"status: unsupported value {status!r}")
    schedule = (
        _as_object(obj.get("schedule_spec"), "schedule_spec") if "schedule_spec" in obj else None
    )
    if schedule is not None:
        stype = schedule.get("schedule_type")
        if stype not in ("DAILY", "HOURLY", "SEMI_HOURLY", "CUSTOM"):
            raise RuleError(f"schedule_spec.schedule_type: unsupported value {stype!r}")

    evaluation = _as_object(obj["evaluation_spec"], "evaluation_spec")
    _reject_unknown(evaluation, {"evaluation_type", "filters"}, "evaluation_spec")
    etype = evaluation.get("evaluation_type")
    if etype != "SCHEDULE":
        raise RuleError(
            f"evaluation_spec.evaluation_type: {etype!r} is not supported; REBALANCE_BUDGET and "
            "CHANGE_BUDGET are schedule-based rules (use 'SCHEDULE')"
        )
    filters_raw = evaluation.get("filters", [])
    if not isinstance(filters_raw, list):
        raise RuleError("evaluation_spec.filters: expected a list of filter objects")

    time_preset = _find_time_preset(filters_raw)
    filters: list[Filter] = []
    for i, f in enumerate(filters_raw):
        parsed = _parse_filter(f, f"evaluation_spec.filters[{i}]")
        if parsed is not None:
            filters.append(parsed)

    execution = _as_object(obj["execution_spec"], "execution_spec")
    _reject_unknown(execution, {"execution_type", "execution_options"}, "execution_spec")
    xtype = execution.get("execution_type")
    if xtype not in EXECUTION_TYPES:
        raise RuleError(
            f"execution_spec.execution_type: {xtype!r} is not supported; supported: "
            + ", ".join(EXECUTION_TYPES)
        )
    options = _parse_options(execution.get("execution_options", []), xtype)

    rebalance = change = None
    if xtype == "REBALANCE_BUDGET":
        if "rebalance_spec" not in options:
            raise RuleError(
                "execution_spec.execution_options: REBALANCE_BUDGET needs a 'rebalance_spec'"
            )
        rebalance = _parse_rebalance(*options["rebalance_spec"])
    else:
        if "change_spec" not in options:
            raise RuleError("execution_spec.execution_options: CHANGE_BUDGET needs a 'change_spec'")
        change = _parse_change(*options["change_spec"])
    frequency = None
    if "action_frequency" in options:
        value, path = options["action_frequency"]
        if not _is_int(value) or value <= 0:
            raise RuleError(
                f"{path}: action_frequency must be a positive integer of minutes, got {value!r}"
            )
        frequency = int(value)
    user_ids: tuple[Any, ...] = ()
    if "user_ids" in options:
        value, path = options["user_ids"]
        if not isinstance(value, list):
            raise RuleError(f"{path}: user_ids must be a list, got {value!r}")
        user_ids = tuple(value)

    return MetaRule(
        execution_type=xtype,
        filters=tuple(filters),
        time_preset=time_preset,
        rebalance=rebalance,
        change=change,
        action_frequency_minutes=frequency,
        name=name,
        status=status,
        schedule_spec=schedule,
        user_ids=user_ids,
        source=dict(obj),
    )


def _as_object(value: Any, path: str) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RuleError(f"{path}: a string that is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, Mapping):
        raise RuleError(f"{path}: expected a JSON object, got {value!r}")
    return value


def _reject_unknown(obj: Mapping[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        where = f"{path}." if path else ""
        names = ", ".join(f"{where}{k}" for k in unknown)
        raise RuleError(
            f"{names}: unsupported field{'s' if len(unknown) > 1 else ''}; supported here: "
            + ", ".join(sorted(allowed))
        )


def _find_time_preset(filters_raw: list[Any]) -> str | None:
    preset = None
    for i, f in enumerate(filters_raw):
        if isinstance(f, Mapping) and f.get("field") == "time_preset":
            path = f"evaluation_spec.filters[{i}]"
            if preset is not None:
                raise RuleError(
                    f"{path}: a second 'time_preset' filter; a rule has one time preset"
                )
            if f.get("operator") != "EQUAL":
                raise RuleError(
                    f"{path}.operator: time_preset supports only EQUAL, got {f.get('operator')!r}"
                )
            value = f.get("value")
            if not isinstance(value, str) or value.upper() not in TIME_PRESETS:
                raise RuleError(
                    f"{path}.value: unsupported time preset {value!r}; supported: "
                    + ", ".join(TIME_PRESETS)
                )
            preset = value.upper()
    return preset


def _parse_filter(f: Any, path: str) -> Filter | None:
    if not isinstance(f, Mapping):
        raise RuleError(f"{path}: expected a filter object with field, value, operator")
    _reject_unknown(f, {"field", "value", "operator"}, path)
    for key in ("field", "value", "operator"):
        if key not in f:
            raise RuleError(f"{path}.{key}: required")
    fname, op, value = f["field"], f["operator"], f["value"]
    if not isinstance(fname, str) or not fname:
        raise RuleError(f"{path}.field: expected a field name, got {fname!r}")
    if op not in OPERATORS:
        raise RuleError(
            f"{path}.operator: unsupported operator {op!r}; Meta's operators: "
            + ", ".join(OPERATORS)
        )
    if fname == "time_preset":
        return None  # handled by _find_time_preset
    _check_value_shape(op, value, f"{path}.value")
    if fname == "entity_type":
        passes = _eval_python(op, "ADSET", value)
        if not passes:
            raise RuleError(
                f"{path}: entity_type filter excludes ADSET; REBALANCE_BUDGET and CHANGE_BUDGET "
                "apply to ad sets only"
            )
        return None
    return Filter(field=_parse_field(fname, f"{path}.field"), operator=op, value=value, path=path)


def _check_value_shape(op: str, value: Any, path: str) -> None:
    if op in ("GREATER_THAN", "LESS_THAN"):
        if _as_number(value) is None:
            raise RuleError(f"{path}: {op} needs a number, got {value!r}")
    elif op in ("EQUAL", "NOT_EQUAL"):
        if not (_is_number(value) or isinstance(value, str)):
            raise RuleError(f"{path}: {op} needs a number or a string, got {value!r}")
    elif op in ("IN_RANGE", "NOT_IN_RANGE"):
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(_as_number(v) is not None for v in value)
        )
        if not ok:
            raise RuleError(f"{path}: {op} needs a [low, high] pair of numbers, got {value!r}")
        if _as_number(value[0]) > _as_number(value[1]):  # type: ignore[operator]
            raise RuleError(f"{path}: {op} range {value!r} has low above high")
    elif op in ("IN", "NOT_IN", "ANY", "ALL", "NONE"):
        ok = isinstance(value, list) and all(_is_number(v) or isinstance(v, str) for v in value)
        if not ok:
            raise RuleError(f"{path}: {op} needs a list of numbers or strings, got {value!r}")
    elif op in ("CONTAIN", "NOT_CONTAIN") and not isinstance(value, str):
        raise RuleError(f"{path}: {op} needs a string, got {value!r}")


def _eval_python(op: str, actual: str, value: Any) -> bool:
    """Evaluate a filter on a constant string (entity_type)."""
    values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    match op:
        case "EQUAL":
            return actual == values[0]
        case "NOT_EQUAL":
            return actual != values[0]
        case "IN" | "ANY":
            return actual in values
        case "NOT_IN" | "NONE":
            return actual not in values
        case "ALL":
            return all(v == actual for v in values)
        case "CONTAIN":
            return values[0] in actual
        case "NOT_CONTAIN":
            return values[0] not in actual
    raise RuleError(f"entity_type does not support operator {op}")


def _parse_field(fname: str, path: str) -> FieldRef:
    if fname in _METADATA_FIELDS:
        return FieldRef(raw=fname, kind="metadata", name="|".join(_METADATA_FIELDS[fname]))
    if "(" in fname or fname == "aggregation_id":
        raise RuleError(f"{path}: aggregated field {fname!r} is not supported")
    if " " in fname.strip():
        raise RuleError(f"{path}: formula field {fname!r} is not supported")
    upper_colon = re.match(r"^([A-Z0-9_]+):(.+)$", fname)
    if upper_colon and upper_colon.group(1) in TIME_PRESETS:
        suggestion = upper_colon.group(1).lower() + "_" + upper_colon.group(2)
        raise RuleError(
            f"{path}: {fname!r} is not Meta's syntax for a time preset; Meta documents a "
            f"lowercase prefix, e.g. {suggestion!r}"
        )
    rest = fname
    if rest.startswith("adset."):
        rest = rest[len("adset.") :]
    elif rest.startswith(("campaign.", "ad.")):
        level = rest.split(".", 1)[0]
        raise RuleError(
            f"{path}: object-level prefix '{level}.' in {fname!r} is not supported: the frame "
            "holds ad-set values only"
        )
    if _ATTRIBUTION_PREFIX.match(rest) or ":" in rest:
        raise RuleError(
            f"{path}: attribution-window prefix in {fname!r} is not supported: the frame has one "
            "attribution setting"
        )
    if not re.fullmatch(r"[A-Za-z0-9_]+", rest):
        raise RuleError(f"{path}: unsupported field {fname!r}")
    if rest in _METADATA_COLUMNS:  # e.g. lifetime_budget: not a "lifetime_" prefix on "budget"
        return FieldRef(raw=fname, kind="metadata", name=rest)
    preset = None
    for prefix in _PRESET_PREFIXES:
        if rest.startswith(prefix) and len(rest) > len(prefix):
            preset = prefix[:-1].upper()
            rest = rest[len(prefix) :]
            break
    if preset is not None and rest in _METADATA_COLUMNS:
        raise RuleError(
            f"{path}: metadata field {rest!r} cannot take a time-preset prefix ({fname!r})"
        )
    if preset is not None:
        for prefix in _PRESET_PREFIXES:
            if rest.startswith(prefix) and len(rest) > len(prefix):
                raise RuleError(f"{path}: {fname!r} has two time-preset prefixes")
    return FieldRef(raw=fname, kind="metric", name=rest, preset=preset)


def _parse_options(raw: Any, xtype: str) -> dict[str, tuple[Any, str]]:
    if not isinstance(raw, list):
        raise RuleError("execution_spec.execution_options: expected a list")
    allowed = {
        "REBALANCE_BUDGET": ("rebalance_spec", "user_ids"),
        "CHANGE_BUDGET": ("change_spec", "action_frequency", "user_ids"),
    }[xtype]
    known_elsewhere = {"rebalance_spec", "change_spec", "action_frequency", "execution_count_limit"}
    options: dict[str, tuple[Any, str]] = {}
    for i, opt in enumerate(raw):
        path = f"execution_spec.execution_options[{i}]"
        if not isinstance(opt, Mapping):
            raise RuleError(f"{path}: expected an option object with field, value, operator")
        _reject_unknown(opt, {"field", "value", "operator"}, path)
        fname = opt.get("field")
        if opt.get("operator") != "EQUAL":
            raise RuleError(
                f"{path}.operator: execution options support only EQUAL, "
                f"got {opt.get('operator')!r}"
            )
        if "value" not in opt:
            raise RuleError(f"{path}.value: required")
        if fname not in allowed:
            if fname == "execution_count_limit":
                why = "it needs the rule's execution history, which a preview does not have"
            elif fname in known_elsewhere:
                why = f"it does not apply to {xtype}"
            else:
                why = "unknown option"
            raise RuleError(
                f"{path}.field: option {fname!r} is not supported ({why}); "
                f"supported: {', '.join(allowed)}"
            )
        if fname in options:
            raise RuleError(f"{path}.field: option {fname!r} given twice")
        value = opt["value"]
        if fname in ("rebalance_spec", "change_spec"):
            value = _as_object(value, f"{path}.value")
        options[fname] = (value, f"{path}.value")
    return options


def _parse_rebalance(spec: Mapping[str, Any], path: str) -> RebalanceSpec:
    _reject_unknown(
        spec, {"type", "target_field", "target_count", "is_inverse", "is_cross_campaign"}, path
    )
    declared = spec.get("type")
    if declared not in (*REBALANCE_TYPES, INVERSE_PROPORTIONAL):
        raise RuleError(
            f"{path}.type: unsupported rebalance type {declared!r}; supported: "
            + ", ".join((*REBALANCE_TYPES, INVERSE_PROPORTIONAL))
        )
    flags = {}
    for key in ("is_inverse", "is_cross_campaign"):
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise RuleError(f"{path}.{key}: expected true or false, got {value!r}")
        flags[key] = value
    rtype = declared
    if declared == INVERSE_PROPORTIONAL:
        if "is_inverse" in spec and not flags["is_inverse"]:
            raise RuleError(f"{path}.is_inverse: false contradicts type INVERSE_PROPORTIONAL")
        rtype, flags["is_inverse"] = "PROPORTIONAL", True
    target = None
    if "target_field" in spec:
        tf = spec["target_field"]
        if not isinstance(tf, str) or not tf:
            raise RuleError(f"{path}.target_field: expected an Insights field name, got {tf!r}")
        target = _parse_field(tf, f"{path}.target_field")
    count = None
    if "target_count" in spec:
        count = spec["target_count"]
        if not _is_int(count) or count < 1:
            raise RuleError(f"{path}.target_count: expected a positive integer, got {count!r}")
        count = int(count)
    if target is None and rtype != "EVEN":
        raise RuleError(f"{path}.target_field: required for rebalance type {declared}")
    if target is None and count is not None:
        raise RuleError(f"{path}.target_field: required when target_count is set")
    return RebalanceSpec(
        type=rtype,
        target_field=target,
        target_count=count,
        is_inverse=flags["is_inverse"],
        is_cross_campaign=flags["is_cross_campaign"],
        declared_type=declared,
    )


def _parse_change(spec: Mapping[str, Any], path: str) -> ChangeSpec:
    _reject_unknown(spec, {"amount", "unit", "limit", "target_field"}, path)
    if "amount" not in spec:
        raise RuleError(f"{path}.amount: required")
    amount = _as_decimal(spec["amount"])
    if amount is None:
        raise RuleError(f"{path}.amount: expected a number, got {spec['amount']!r}")
    target = None
    if "target_field" in spec:
        tf = spec["target_field"]
        if not isinstance(tf, str) or not tf:
            raise RuleError(f"{path}.target_field: expected an Insights field name, got {tf!r}")
        target = _parse_field(tf, f"{path}.target_field")
    unit = spec.get("unit")
    if target is not None:
        if unit is not None:
            raise RuleError(f"{path}.unit: not used with target_field (amount is the target value)")
        if amount <= 0:
            raise RuleError(
                f"{path}.amount: a target value must be positive, got {spec['amount']!r}"
            )
    else:
        if unit not in CHANGE_UNITS:
            raise RuleError(f"{path}.unit: expected one of {', '.join(CHANGE_UNITS)}, got {unit!r}")
        if unit == "ACCOUNT_CURRENCY" and amount != amount.to_integral_value():
            raise RuleError(
                f"{path}.amount: {spec['amount']!r} is not an integer number of minor units "
                "(ACCOUNT_CURRENCY amounts are minor units, e.g. 3000 = 30.00)"
            )
        if unit == "PERCENTAGE" and amount <= -100:
            raise RuleError(
                f"{path}.amount: a percentage change of {spec['amount']!r} would leave no budget"
            )
    limit: int | tuple[int, int] | None = None
    if "limit" in spec:
        raw = spec["limit"]
        if target is not None:
            ok = isinstance(raw, list) and len(raw) == 2 and all(_is_int(v) and v >= 0 for v in raw)
            if not ok or raw[0] > raw[1]:
                raise RuleError(
                    f"{path}.limit: with target_field, limit is a [min, max] range of "
                    f"minor units, got {raw!r}"
                )
            limit = (int(raw[0]), int(raw[1]))
        else:
            if not _is_int(raw) or raw < 0:
                raise RuleError(
                    f"{path}.limit: expected a non-negative integer of minor units, got {raw!r}"
                )
            limit = int(raw)
    return ChangeSpec(amount=amount, unit=unit, limit=limit, target_field=target)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and math.isfinite(v) and v.is_integer()
    )


def _as_number(v: Any) -> float | None:
    if _is_number(v):
        try:
            return float(v)
        except OverflowError:  # an integer beyond float64: no metric or budget is that large
            return None
    if isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def _as_decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


# ------------------------------------------------------------------------ field resolution


def resolve_column(ref: FieldRef, columns: Sequence[str], rule_preset: str | None) -> str:
    """The frame column a field reads, per the module's convention; :class:`RuleError` if none."""
    cols = set(columns)
    if ref.kind == "metadata":
        candidates = ref.name.split("|")
    elif ref.name in _METADATA_COLUMNS:
        candidates = [ref.name]
    else:
        preset = ref.preset or rule_preset
        candidates = []
        if preset is not None:
            candidates.append(f"{preset.lower()}__{ref.name}")
        if ref.preset is None or ref.preset == rule_preset:
            candidates.append(ref.name)
    for c in candidates:
        if c in cols:
            return c
    raise RuleError(
        f"field {ref.raw!r}: no such column in the ad-set data (looked for "
        + ", ".join(repr(c) for c in candidates)
        + ")"
    )


def referenced_columns(rule: MetaRule, columns: Sequence[str]) -> dict[str, bool]:
    """Columns the rule reads → whether they must be numeric. Raises if a field has no column."""
    out: dict[str, bool] = {}
    for f in rule.filters:
        col = resolve_column(f.field, columns, rule.time_preset)
        numeric = f.operator in ("GREATER_THAN", "LESS_THAN", "IN_RANGE", "NOT_IN_RANGE") or (
            f.field.kind == "metric"
            and f.field.name not in _METADATA_COLUMNS
            and f.operator in ("EQUAL", "NOT_EQUAL")
            and _is_number(f.value)
        )
        out[col] = out.get(col, False) or numeric
    for tf in _target_fields(rule):
        out[resolve_column(tf, columns, rule.time_preset)] = True
    return out


def _target_fields(rule: MetaRule) -> list[FieldRef]:
    spec = rule.rebalance or rule.change
    return [spec.target_field] if spec is not None and spec.target_field is not None else []


# -------------------------------------------------------------------------------- matching


def match_filters(rule: MetaRule, adsets: pl.DataFrame) -> pl.Series:
    """Boolean Series ``matched``: the rows passing every filter (AND); nulls never pass."""
    exprs = [_filter_expr(f, adsets, rule.time_preset) for f in rule.filters]
    if not exprs:
        return pl.Series("matched", [True] * adsets.height, dtype=pl.Boolean)
    combined = pl.all_horizontal(exprs).fill_null(False).alias("matched")
    return adsets.select(combined).to_series()


def _filter_expr(f: Filter, frame: pl.DataFrame, preset: str | None) -> pl.Expr:
    col_name = resolve_column(f.field, frame.columns, preset)
    dtype = frame.schema[col_name]
    col = pl.col(col_name)
    op, value = f.operator, f.value
    where = f"{f.path} (field {f.field.raw!r}, column {col_name!r})"

    if isinstance(dtype, pl.List):
        inner_numeric = dtype.inner.is_numeric()
        vals = _coerce_list(value, inner_numeric, where)
        col = col.cast(pl.List(pl.Float64 if inner_numeric else pl.Utf8))
        if op == "ANY":
            return col.list.eval(pl.element().is_in(vals)).list.any()
        if op == "NONE":
            return ~col.list.eval(pl.element().is_in(vals)).list.any()
        if op == "ALL":
            return pl.all_horizontal([col.list.contains(v) for v in vals]) if vals else pl.lit(True)
        raise RuleError(f"{where}: operator {op} does not apply to a list-valued field")

    if dtype.is_numeric() and op in ("CONTAIN", "NOT_CONTAIN"):
        raise RuleError(f"{where}: {op} needs a text field, the column is numeric")
    if dtype.is_integer():
        return _integer_filter(col, op, value, where)
    if dtype.is_numeric():
        col = col.cast(pl.Float64)  # compare in one type: filter values are JSON numbers
        if op in ("IN", "NOT_IN", "ANY", "ALL", "NONE"):
            vals = _coerce_list(value, True, where)
            return _set_expr(col, op, vals)
        if op in ("IN_RANGE", "NOT_IN_RANGE"):
            inside = col.is_between(_as_number(value[0]), _as_number(value[1]), closed="both")
            return inside if op == "IN_RANGE" else ~inside
        num = _as_number(value)
        if num is None:
            raise RuleError(f"{where}: {op} on a numeric column needs a number, got {value!r}")
        return {
            "GREATER_THAN": col > num,
            "LESS_THAN": col < num,
            "EQUAL": col == num,
            "NOT_EQUAL": col != num,
        }[op]

    if dtype == pl.Utf8 or isinstance(dtype, (pl.Categorical, pl.Enum)):
        text = col.cast(pl.Utf8)
        if op in ("GREATER_THAN", "LESS_THAN", "IN_RANGE", "NOT_IN_RANGE"):
            raise RuleError(f"{where}: {op} needs a numeric column, the column holds text")
        if op in ("CONTAIN", "NOT_CONTAIN"):
            contains = text.str.contains(value, literal=True)
            return contains if op == "CONTAIN" else ~contains
        if op in ("EQUAL", "NOT_EQUAL"):
            s = _as_text(value)
            return text == s if op == "EQUAL" else text != s
        return _set_expr(text, op, _coerce_list(value, False, where))

    raise RuleError(f"{where}: unsupported column type {dtype}")


def _integer_filter(col: pl.Expr, op: str, value: Any, where: str) -> pl.Expr:
    """A filter on an integer column (budgets, counts), compared exactly: no float64 rounding
    of an 18-digit budget. For an integer x, ``x > v`` is ``x > floor(v)`` and ``x < v`` is
    ``x < ceil(v)``; a threshold beyond int64 compares as the int64 end it passes."""
    col = col.cast(pl.Int64)
    always, never = pl.lit(True), pl.lit(False)

    def exact(v: Any) -> Fraction:
        if _as_number(v) is None:
            raise RuleError(f"{where}: {op} on a numeric column needs a number, got {v!r}")
        return Fraction(v) if isinstance(v, int) else Fraction(Decimal(str(v)))

    def above(bound: int) -> pl.Expr:  # x > bound
        if bound >= INT64_MAX:
            return never
        return always if bound < -INT64_MAX - 1 else col > bound

    def below(bound: int) -> pl.Expr:  # x < bound
        if bound <= -INT64_MAX - 1:
            return never
        return always if bound > INT64_MAX else col < bound

    def whole(values: list[Fraction]) -> list[int]:
        ints = [int(v) for v in values if v.denominator == 1]
        return [v for v in ints if -INT64_MAX - 1 <= v <= INT64_MAX]

    if op in ("IN", "NOT_IN", "ANY", "ALL", "NONE"):
        _coerce_list(value, True, where)  # the checks and their messages
        fractions = [exact(v) for v in value]  # the JSON values, not their float64 roundings
        ints = whole(fractions)
        if op == "ALL":  # every listed value equals the field
            if len(ints) < len(fractions):
                result = never
            else:
                result = pl.all_horizontal([col == v for v in ints]) if ints else always
        else:
            inside = col.is_in(ints) if ints else never
            result = inside if op in ("IN", "ANY") else ~inside
    elif op in ("IN_RANGE", "NOT_IN_RANGE"):
        low, high = exact(value[0]), exact(value[1])
        inside = ~below(math.ceil(low)) & ~above(math.floor(high))
        result = inside if op == "IN_RANGE" else ~inside
    else:
        v = exact(value)
        if op == "GREATER_THAN":
            result = above(math.floor(v))
        elif op == "LESS_THAN":
            result = below(math.ceil(v))
        else:
            equal = col == int(v) if whole([v]) else never
            result = equal if op == "EQUAL" else ~equal
    return pl.when(col.is_not_null()).then(result)  # a missing value never passes


def _set_expr(col: pl.Expr, op: str, vals: list[Any]) -> pl.Expr:
    if op in ("IN", "ANY"):
        return col.is_in(vals)
    if op in ("NOT_IN", "NONE"):
        return ~col.is_in(vals)
    # ALL on a scalar: every listed value equals the field.
    return pl.all_horizontal([col == v for v in vals]) if vals else pl.lit(True)


def _coerce_list(value: Any, numeric: bool, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise RuleError(f"{where}: expected a list, got {value!r}")
    if not numeric:
        return [_as_text(v) for v in value]
    out = []
    for v in value:
        num = _as_number(v)
        if num is None:
            raise RuleError(f"{where}: {v!r} is not a number but the column is numeric")
        out.append(num)
    return out


def _as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ---------------------------------------------------------------------- frame validation


def validate_adsets(adsets: pl.DataFrame) -> pl.DataFrame:
    """Check and normalise an ad-set frame; adds ``budget_type``, ``old_budget``, ``available``.

    Needs :data:`REQUIRED_COLUMNS`; each ad set has exactly one of ``daily_budget`` and
    ``lifetime_budget``; budgets and spend are non-negative integers of minor units; a lifetime
    ad set has a ``lifetime_spend`` not above its ``lifetime_budget``; ``adset_id`` is unique.
    Errors name the ad set (the CSV loader names rows before it gets here).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in adsets.columns]
    if missing:
        raise AdsetFrameError("ad-set data is missing required column(s): " + ", ".join(missing))
    for c in ("daily_budget", "lifetime_budget", "lifetime_spend"):
        if adsets.schema[c].is_float():
            fractional = adsets.filter(pl.col(c) != pl.col(c).floor())
            if fractional.height:
                raise AdsetFrameError(
                    f"ad set {fractional.item(0, 'adset_id')!r}: {c} "
                    f"{fractional.item(0, c)!r} is not an integer number of minor units"
                )
    try:
        frame = adsets.with_columns(
            pl.col("adset_id").cast(pl.Utf8),
            pl.col("campaign_id").cast(pl.Utf8),
            pl.col("daily_budget").cast(pl.Int64),
            pl.col("lifetime_budget").cast(pl.Int64),
            pl.col("lifetime_spend").cast(pl.Int64),
        )
    except pl.exceptions.PolarsError as exc:
        raise AdsetFrameError(f"budget columns must be integers of minor units: {exc}") from exc

    def first(mask: pl.Expr) -> str | None:
        hit = frame.filter(mask).select("adset_id")
        return None if hit.height == 0 else str(hit.item(0, 0))

    if frame.filter(pl.col("adset_id").is_null() | (pl.col("adset_id") == "")).height:
        raise AdsetFrameError("every ad set needs a non-empty adset_id")
    dupes = frame.group_by("adset_id").len().filter(pl.col("len") > 1)
    if dupes.height:
        raise AdsetFrameError(f"adset_id {dupes.item(0, 'adset_id')!r} appears more than once")
    if (bad := first(pl.col("campaign_id").is_null() | (pl.col("campaign_id") == ""))) is not None:
        raise AdsetFrameError(f"ad set {bad!r}: campaign_id is empty")
    both = pl.col("daily_budget").is_not_null() & pl.col("lifetime_budget").is_not_null()
    neither = pl.col("daily_budget").is_null() & pl.col("lifetime_budget").is_null()
    if (bad := first(both)) is not None:
        raise AdsetFrameError(f"ad set {bad!r} has both a daily_budget and a lifetime_budget")
    if (bad := first(neither)) is not None:
        raise AdsetFrameError(f"ad set {bad!r} has neither a daily_budget nor a lifetime_budget")
    for c in ("daily_budget", "lifetime_budget", "lifetime_spend"):
        if (bad := first(pl.col(c) < 0)) is not None:
            raise AdsetFrameError(f"ad set {bad!r}: {c} is negative")
    lifetime = pl.col("lifetime_budget").is_not_null()
    if (bad := first(lifetime & pl.col("lifetime_spend").is_null())) is not None:
        raise AdsetFrameError(f"ad set {bad!r} has a lifetime_budget but no lifetime_spend")
    if (
        bad := first(lifetime & (pl.col("lifetime_spend") > pl.col("lifetime_budget")))
    ) is not None:
        raise AdsetFrameError(f"ad set {bad!r}: lifetime_spend is above lifetime_budget")
    budgets = frame.get_column("daily_budget").fill_null(frame.get_column("lifetime_budget"))
    total = budgets.cast(pl.Int128).sum() or 0  # Int64 sums wrap around silently
    if total > INT64_MAX:
        raise AdsetFrameError(
            f"the budgets add up to {total} minor units, more than a 64-bit integer holds "
            f"({INT64_MAX}): a rebalance moves sums of them, so they must fit"
        )
    return frame.with_columns(
        pl.when(lifetime).then(pl.lit("lifetime")).otherwise(pl.lit("daily")).alias("budget_type"),
        pl.coalesce("daily_budget", "lifetime_budget").alias("old_budget"),
        pl.when(lifetime)
        .then(pl.col("lifetime_budget") - pl.col("lifetime_spend"))
        .otherwise(pl.col("daily_budget"))
        .alias("available"),
        pl.when(lifetime)
        .then(pl.col("lifetime_spend"))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("spend_floor"),
    )


# -------------------------------------------------------------------------------- applying


def apply_rule(
    rule: MetaRule,
    adsets: pl.DataFrame,
    *,
    now: datetime | None = None,
    last_applied: Mapping[str, datetime] | None = None,
) -> pl.DataFrame:
    """Apply ``rule`` to ``adsets`` and return the plan (:data:`PLAN_SCHEMA`, input order).

    ``now`` and ``last_applied`` (adset_id → when this rule last changed it) feed the
    ``action_frequency`` cooldown of CHANGE_BUDGET; ``now`` defaults to the current time in the
    timezone of the ``last_applied`` values (naive if they are naive).
    """
    frame = validate_adsets(adsets)
    matched = match_filters(rule, frame)
    frame = frame.with_columns(matched.alias("matched"), pl.int_range(pl.len()).alias("_row"))
    if rule.execution_type == "REBALANCE_BUDGET":
        assert rule.rebalance is not None
        plan = _apply_rebalance(rule, rule.rebalance, frame)
    else:
        assert rule.change is not None
        plan = _apply_change(rule, rule.change, frame, now=now, last_applied=last_applied or {})
    return plan.sort("_row").select(list(PLAN_SCHEMA)).cast(PLAN_SCHEMA)  # type: ignore[arg-type]


def _weights(
    rule: MetaRule, target: FieldRef | None, is_inverse: bool, frame: pl.DataFrame
) -> np.ndarray:
    if target is None:
        return np.ones(frame.height)
    col = resolve_column(target, frame.columns, rule.time_preset)
    dtype = frame.schema[col]
    if not dtype.is_numeric():
        raise RuleError(f"target_field {target.raw!r}: column {col!r} is not numeric")
    values = frame.get_column(col).cast(pl.Float64)
    negative = frame.filter(values < 0)
    if negative.height:
        raise RuleError(
            f"target_field {target.raw!r}: ad set {negative.item(0, 'adset_id')!r} has a negative "
            f"value in column {col!r}"
        )
    v = values.fill_null(0.0).fill_nan(0.0).to_numpy().astype(np.float64)
    v = np.where(np.isfinite(v), v, 0.0)
    positive = v > 0
    if not positive.any():
        return np.zeros_like(v)
    # The split works on the weights' exact values, so they are not rescaled; the inverse is
    # taken as smallest/value, in (0, 1], so that 1/tiny cannot overflow to inf.
    if is_inverse:
        smallest = v[positive].min()
        return np.where(positive, smallest / np.where(positive, v, 1.0), 0.0)
    return v


def _apply_rebalance(rule: MetaRule, spec: RebalanceSpec, frame: pl.DataFrame) -> pl.DataFrame:
    weights = _weights(rule, spec.target_field, spec.is_inverse, frame)
    frame = frame.with_columns(pl.Series("_weight", weights, dtype=pl.Float64))
    keys = ["budget_type"] if spec.is_cross_campaign else ["campaign_id", "budget_type"]
    parts = []
    for bucket in frame.partition_by(keys, maintain_order=True):
        parts.append(_rebalance_bucket(spec, bucket))
    if not parts:
        return frame.with_columns(
            pl.col("old_budget").alias("new_budget"),
            pl.lit(False).alias("paused"),
            pl.lit("").alias("reason"),
        )
    return pl.concat(parts)


def _rebalance_bucket(spec: RebalanceSpec, bucket: pl.DataFrame) -> pl.DataFrame:
    # Rank order: weight high to low, then adset_id; all arrays below are in this order.
    bucket = bucket.sort(["_weight", "adset_id"], descending=[True, False])
    avail = bucket.get_column("available").to_numpy().astype(np.int64)
    matched = bucket.get_column("matched").to_numpy().astype(bool)
    weight = bucket.get_column("_weight").to_numpy()
    n = bucket.height
    new_avail = avail.copy()
    paused = np.zeros(n, dtype=bool)
    reasons = ["not matched: unchanged"] * n
    for i in np.flatnonzero(matched):
        reasons[i] = "matched"
    k = spec.target_count
    label = spec.declared_type or spec.type

    def top(candidates: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(candidates)
        return idx if k is None else idx[:k]

    def split(total: int, idx: np.ndarray) -> np.ndarray:
        w = np.ones(idx.size) if spec.type == "EVEN" else weight[idx]
        return largest_remainder_split(int(total), w)

    donated = int(avail[matched].sum())
    if not matched.any():
        reasons = ["no matched ad set in this bucket: unchanged"] * n
    elif spec.type in ("EVEN", "PROPORTIONAL"):
        recipients = top(~matched)
        if recipients.size == 0:
            reasons = [
                "no recipients: every ad set in this bucket matched; nothing moved, nothing paused"
            ] * n
        else:
            shares = split(donated, recipients)
            new_avail[recipients] = avail[recipients] + shares
            for i in np.flatnonzero(matched):
                paused[i] = True
                reasons[i] = f"matched: paused, donates {int(avail[i])}; stored budget kept"
            for i, s in zip(recipients, shares, strict=True):
                reasons[i] = f"recipient: +{int(s)} ({label} share of {donated})"
            if k is not None:
                others = np.setdiff1d(np.flatnonzero(~matched), recipients)
                for i in others:
                    reasons[i] = f"not matched, not in top {k} recipients: unchanged"
    elif spec.type == "NO_PAUSE_PROPORTIONAL":
        takers = top(np.ones(n, dtype=bool))
        shares = np.zeros(n, dtype=np.int64)
        shares[takers] = split(donated, takers)
        new_avail = np.where(matched, shares, avail + shares)
        taker_set = set(takers.tolist())
        for i in range(n):
            out_of_top = i not in taker_set
            if matched[i]:
                reasons[i] = f"matched: keeps its share {int(shares[i])} of {donated}"
                if out_of_top:
                    reasons[i] += f" (not in top {k})"
            elif out_of_top:
                reasons[i] = f"not matched, not in top {k}: unchanged"
            else:
                reasons[i] = f"recipient: +{int(shares[i])} (share of {donated})"
    else:  # MATCHED_ONLY_PROPORTIONAL
        takers = top(matched)
        shares = np.zeros(n, dtype=np.int64)
        shares[takers] = split(donated, takers)
        new_avail = np.where(matched, shares, avail)
        taker_set = set(takers.tolist())
        for i in np.flatnonzero(matched):
            reasons[i] = f"matched: {int(shares[i])} of the matched total {donated}"
            if i not in taker_set:
                reasons[i] += f" (not in top {k})"

    floor = bucket.get_column("spend_floor").to_numpy().astype(np.int64)
    new_budget = np.where(paused, bucket.get_column("old_budget").to_numpy(), floor + new_avail)
    return bucket.with_columns(
        pl.Series("new_budget", new_budget, dtype=pl.Int64),
        pl.Series("paused", paused, dtype=pl.Boolean),
        pl.Series("reason", reasons, dtype=pl.Utf8),
        pl.Series("_new_available", new_avail, dtype=pl.Int64),
    )


def _apply_change(
    rule: MetaRule,
    spec: ChangeSpec,
    frame: pl.DataFrame,
    *,
    now: datetime | None,
    last_applied: Mapping[str, datetime],
) -> pl.DataFrame:
    old = frame.get_column("old_budget").to_list()
    floors = frame.get_column("spend_floor").to_list()
    matched = frame.get_column("matched").to_list()
    ids = frame.get_column("adset_id").to_list()
    current: list[float | None] = [None] * frame.height
    cost_metric = False
    if spec.target_field is not None:
        col = resolve_column(spec.target_field, frame.columns, rule.time_preset)
        if not frame.schema[col].is_numeric():
            raise RuleError(
                f"change_spec.target_field {spec.target_field.raw!r}: column {col!r} is not numeric"
            )
        current = frame.get_column(col).cast(pl.Float64).to_list()
        cost_metric = bool(_COST_METRIC.match(spec.target_field.name))
    if rule.action_frequency_minutes is not None and last_applied and now is None:
        sample = next(iter(last_applied.values()))
        now = datetime.now(sample.tzinfo)
    cooldown = timedelta(minutes=rule.action_frequency_minutes or 0)

    new_budget: list[int] = []
    reasons: list[str] = []
    for i, budget in enumerate(old):
        if not matched[i]:
            new_budget.append(budget)
            reasons.append("not matched: unchanged")
            continue
        when = last_applied.get(ids[i])
        if rule.action_frequency_minutes is not None and when is not None:
            assert now is not None
            try:
                since = now - when
            except TypeError as exc:
                raise ValueError(
                    f"ad set {ids[i]!r}: last_applied and now must both be naive or both aware"
                ) from exc
            if since < cooldown:
                minutes = int(since.total_seconds() // 60)
                new_budget.append(budget)
                reasons.append(
                    f"skipped: changed {minutes} min ago, action_frequency is "
                    f"{rule.action_frequency_minutes} min"
                )
                continue
        target, why = _changed_budget(spec, budget, current[i], cost_metric)
        if target is None:
            new_budget.append(budget)
            reasons.append(why)
            continue
        target, limit_note = _apply_limit(spec, budget, target)
        floor = int(floors[i])
        if target < floor:
            target, limit_note = floor, ("at lifetime_spend" if floor else "at 0")
        if target > INT64_MAX:
            raise RuleError(
                f"ad set {ids[i]!r}: {why} makes its budget {budget} into {target} minor units, "
                f"more than a 64-bit integer holds ({INT64_MAX}); set a limit or a smaller amount"
            )
        new_budget.append(target)
        delta = target - budget
        reasons.append(
            f"{why}: {'+' if delta >= 0 else ''}{delta}"
            + (f" ({limit_note})" if limit_note else "")
        )
    return frame.with_columns(
        pl.Series("new_budget", new_budget, dtype=pl.Int64),
        pl.lit(False).alias("paused"),
        pl.Series("reason", reasons, dtype=pl.Utf8),
    )


def _changed_budget(
    spec: ChangeSpec, budget: int, current: float | None, cost_metric: bool
) -> tuple[int | None, str]:
    if spec.target_field is not None:
        if current is None or not math.isfinite(current) or current <= 0:
            return None, f"matched, skipped: no positive {spec.target_field.raw} value to scale by"
        cur, amount = Fraction(current), Fraction(spec.amount)  # both exact
        ratio = amount / cur if cost_metric else cur / amount
        value = _round_half_away(budget * ratio)
        return value, f"matched: scaled x{float(ratio):.4g} toward target {spec.amount}"
    if spec.unit == "ACCOUNT_CURRENCY":
        return budget + int(spec.amount), f"matched: {spec.amount:+} minor units"
    delta = _round_half_away(budget * Fraction(spec.amount) / 100)
    return budget + delta, f"matched: {spec.amount:+}%"


def _round_half_away(value: Fraction) -> int:
    """An exact fraction to the nearest integer, halves away from zero."""
    magnitude = int(abs(value) + Fraction(1, 2))  # int() truncates: a floor for >= 0
    return magnitude if value >= 0 else -magnitude


def _apply_limit(spec: ChangeSpec, budget: int, target: int) -> tuple[int, str]:
    if spec.limit is None or target == budget:
        return target, ""
    if isinstance(spec.limit, tuple):
        low, high = spec.limit
    elif target > budget:
        low, high = 0, spec.limit
    else:
        low, high = spec.limit, None
    if target > budget and high is not None and target > high:
        return max(budget, high), f"capped at limit {high}"
    if target < budget and target < low:
        return min(budget, low), f"held at limit {low}"
    return target, ""


# ------------------------------------------------------------------------------ invariants


def bucket_conservation(rule: MetaRule, adsets: pl.DataFrame, plan: pl.DataFrame) -> pl.DataFrame:
    """Per rebalance bucket: ``before`` (sum of available) and ``after`` (sum of effective new).

    *Effective new available* is 0 for a paused ad set (its available amount was donated) and
    ``new_budget - lifetime_spend`` (lifetime) or ``new_budget`` (daily) otherwise. A correct
    REBALANCE_BUDGET plan has ``before == after`` in every row.
    """
    if rule.rebalance is None:
        raise RuleError("bucket_conservation applies to REBALANCE_BUDGET rules")
    frame = validate_adsets(adsets).select("adset_id", "available", "spend_floor")
    joined = plan.join(frame, on="adset_id", how="left")
    keys = ["budget_type"] if rule.rebalance.is_cross_campaign else ["campaign_id", "budget_type"]
    effective = (
        pl.when(pl.col("paused")).then(0).otherwise(pl.col("new_budget") - pl.col("spend_floor"))
    )
    return (
        joined.group_by(keys, maintain_order=True)
        .agg(pl.col("available").sum().alias("before"), effective.sum().alias("after"))
        .sort(keys)
    )
