"""The Meta rule policy: a pool moved by a native ``adrules_library`` rule.

A pool with ``policy: meta_rule`` hands its ad sets to a native rule
(:mod:`~budget_pipeline.engine.meta_rules`) instead of a product policy. The rule's result is
each ad set's *target*; the allocator (:mod:`~budget_pipeline.engine.allocator`) and its
guards (SPEC §7) then decide how far this cycle goes, exactly as for every other policy.

Metrics a rule reads (:func:`rule_metrics`)
-------------------------------------------
Per ad set, from the window sums at ``as_of`` (contracts / signals.WINDOW_METRICS), named by the
meta_rules convention ``<preset>__<metric>`` for each trailing preset a window length covers:

======  =========================================
window  presets (both of Meta's spellings)
======  =========================================
48 h    ``last_2d``, ``last_2_days``
72 h    ``last_3d``, ``last_3_days`` — also the plain ``<metric>`` names (:data:`DEFAULT_PRESET`)
168 h   ``last_7d``, ``last_7_days``
336 h   ``last_14d``, ``last_14_days``
672 h   ``last_28d``, ``last_28_days``
720 h   ``last_30d``, ``last_30_days``
======  =========================================

A trailing window ending at ``as_of`` equals Meta's preset (whole local days, today excluded)
when ``as_of`` is a local midnight, as in daily cycles; intraday it is the trailing equivalent.
``today``, ``yesterday``, ``lifetime`` and the ``last_nd_*`` presets are not windows of this
pipeline: a rule reading them fails with :class:`~budget_pipeline.engine.meta_rules.RuleError`
naming the column it looked for. Plain names are the 72 h window, the product's default lookback
(SPEC §3); they are offered to a rule only when it has no ``time_preset`` or one of 72 h, so a
rule over another preset never silently reads the 72 h numbers.

Metrics (Meta's rule field names; money in the account's **minor units**, as Meta's rule
engine reads spend and costs — its own example ``cost_per_purchase_fb > 1000`` is 10.00):

* ``spent`` (spend), ``impressions``, ``reach``, ``clicks``;
* ``results`` — conversions of the configured conversion action (``Settings.conversion_action``,
  a purchase by default);
* ``ctr`` = clicks / impressions × 100 (percent), ``cpc`` = spent / clicks,
  ``cpm`` = spent / impressions × 1000, ``cpp`` = spent / reach × 1000,
  ``frequency`` = impressions / reach;
* ``cost_per_result``, ``cpa`` and ``cost_per_purchase_fb`` = spent / results;
* ``website_purchase_roas`` and ``purchase_roas`` = purchase value / spend (a ratio).

A ratio is missing (null) when its denominator is 0 — as in Meta, where an ad set without
results has no cost per result — and a missing value never passes a filter. An ad set with
Insights in some window at ``as_of`` has zero sums in the windows where it had none; an ad set
with no Insights row at ``as_of`` is absent, so every metric of it is missing.

Proposals (:func:`propose_rule`)
--------------------------------
The rule sees the pool's ACTIVE, unlocked ad sets with a daily budget (Meta applies a rule to
active objects; a locked entity is "do not touch") with their names, campaign names and
metrics; CBO campaigns hold (a Meta rule moves ad-set budgets). Its new budget for each is the
proposal's target; a rule pause is a pause, whose money goes to the pool's active ad sets (as
in Meta's EVEN and PROPORTIONAL, where the matched objects' budgets fund the others). The
allocator then takes this cycle's capped step toward those targets, with the money kept inside
the rule's pool. Reasons read ``meta rule "<name>": <what the rule wanted>``.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import PROPOSALS
from budget_pipeline.engine.holders import budget_holders
from budget_pipeline.engine.meta_rules import (
    MetaRule,
    RuleError,
    apply_rule,
)
from budget_pipeline.engine.plan_text import money_text
from budget_pipeline.money import minor_factor

POLICY = "meta_rule"
__all__ = [
    "DEFAULT_PRESET",
    "METRIC_NAMES",
    "PRESET_WINDOW_HOURS",
    "propose_rule",
    "rule_label",
    "rule_metrics",
    "rule_window_hours",
]

# Trailing presets → the window length (hours) that covers them.
PRESET_WINDOW_HOURS: dict[str, int] = {
    "LAST_2D": 48,
    "LAST_2_DAYS": 48,
    "LAST_3D": 72,
    "LAST_3_DAYS": 72,
    "LAST_7D": 168,
    "LAST_7_DAYS": 168,
    "LAST_14D": 336,
    "LAST_14_DAYS": 336,
    "LAST_28D": 672,
    "LAST_28_DAYS": 672,
    "LAST_30D": 720,
    "LAST_30_DAYS": 720,
}
# The preset the plain metric names stand for (the product's default lookback, SPEC §3).
DEFAULT_PRESET = "LAST_3D"
_DEFAULT_HOURS = PRESET_WINDOW_HOURS[DEFAULT_PRESET]

_SUMS = ("spend", "impressions", "reach", "clicks", "conversions", "purchase_value")
_COUNTS = ("impressions", "reach", "clicks")


def _metric_exprs(hours: int, factor: int) -> dict[str, pl.Expr]:
    """Meta rule metrics over one window, from the pivoted sums ``<sum>_<hours>``."""

    def s(name: str) -> pl.Expr:
        return pl.col(f"{name}_{hours}")

    def ratio(num: pl.Expr, den: pl.Expr, scale: float = 1.0) -> pl.Expr:
        return pl.when(den > 0).then(num.cast(pl.Float64) * scale / den)

    spent = s("spend") * factor
    results = s("conversions")
    cost_per_result = ratio(spent, results)
    roas = ratio(s("purchase_value"), s("spend"))
    return {
        "spent": spent,
        "impressions": s("impressions"),
        "reach": s("reach"),
        "clicks": s("clicks"),
        "results": results,
        "ctr": ratio(s("clicks"), s("impressions"), 100.0),
        "cpc": ratio(spent, s("clicks")),
        "cpm": ratio(spent, s("impressions"), 1000.0),
        "cpp": ratio(spent, s("reach"), 1000.0),
        "frequency": ratio(s("impressions"), s("reach")),
        "cost_per_result": cost_per_result,
        "cpa": cost_per_result,
        "cost_per_purchase_fb": cost_per_result,
        "website_purchase_roas": roas,
        "purchase_roas": roas,
    }


METRIC_NAMES: tuple[str, ...] = tuple(_metric_exprs(_DEFAULT_HOURS, 1))


def rule_metrics(windows: pl.DataFrame, as_of: datetime, *, currency: str = "EUR") -> pl.DataFrame:
    """Per ad set, the Insights metrics a Meta rule can filter or rank on (module docstring).

    ``windows`` is signals.WINDOW_METRICS; the rows at ``as_of`` are used, and a column set for
    every window length in ``windows`` that covers a preset (so the columns do not depend on
    which ad sets delivered; an empty ``windows`` has none). ``currency`` turns spend into minor
    units. Returns ``adset_id`` plus ``<preset>__<metric>`` columns (and plain ``<metric>`` for
    :data:`DEFAULT_PRESET`).
    """
    factor = minor_factor(currency)
    missing = [c for c in ("adset_id", "as_of", "window_hours", *_SUMS) if c not in windows.columns]
    if missing:
        raise ValueError(f"windows is missing columns {missing}; has {windows.columns}")
    present = set(windows.get_column("window_hours").unique().drop_nulls().to_list())
    hours = sorted(h for h in set(PRESET_WINDOW_HOURS.values()) if h in present)
    if not hours:
        return pl.DataFrame(schema={"adset_id": pl.Utf8})
    sums = windows.filter(pl.col("as_of") == as_of).select(
        pl.col("adset_id").cast(pl.Utf8),
        pl.col("window_hours").cast(pl.Int64),
        *[pl.col(c).cast(pl.Int64 if c in _COUNTS else pl.Float64).fill_null(0) for c in _SUMS],
    )
    wide = sums.pivot(
        on="window_hours",
        on_columns=hours,
        index="adset_id",
        values=list(_SUMS),
        aggregate_function="sum",
        separator="_",
    )
    # Every window column exists even where no ad set delivered; an ad set with a row in some
    # window at as_of had zero Insights in the windows without one.
    wide = wide.with_columns(
        *[
            (pl.col(f"{c}_{h}") if f"{c}_{h}" in wide.columns else pl.lit(None))
            .cast(pl.Int64 if c in _COUNTS else pl.Float64)
            .fill_null(0)
            .alias(f"{c}_{h}")
            for h in hours
            for c in _SUMS
        ]
    )
    columns: list[pl.Expr] = []
    for h in hours:
        prefixes = sorted({p.lower() for p, w in PRESET_WINDOW_HOURS.items() if w == h})
        for metric, expr in _metric_exprs(h, factor).items():
            columns += [expr.alias(f"{p}__{metric}") for p in prefixes]
            if h == _DEFAULT_HOURS:
                columns.append(expr.alias(metric))
    return wide.select("adset_id", *columns).sort("adset_id")


def rule_window_hours(rule: MetaRule) -> list[int]:
    """Window lengths (hours) whose metrics ``rule`` reads: feed them to ``window_metrics``."""
    refs = [f.field for f in rule.filters]
    spec = rule.rebalance or rule.change
    if spec is not None and spec.target_field is not None:
        refs.append(spec.target_field)
    out = set()
    for ref in refs:
        if ref.kind != "metric" or ref.name not in METRIC_NAMES:
            continue
        preset = ref.preset or rule.time_preset or DEFAULT_PRESET
        if preset in PRESET_WINDOW_HOURS:
            out.add(PRESET_WINDOW_HOURS[preset])
    return sorted(out)


def rule_label(rule: MetaRule) -> str:
    """The rule's name, or its type when it has none (``EVEN``, ``CHANGE_BUDGET``, …)."""
    if rule.name:
        return rule.name
    if rule.rebalance is not None:
        return rule.rebalance.declared_type or rule.rebalance.type
    return rule.execution_type


def propose_rule(
    pool_name: str,
    entities: pl.DataFrame,
    metrics: pl.DataFrame,
    rule: MetaRule,
    config: PoolsConfig,
    *,
    as_of: datetime,
    last_changes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """PROPOSALS for pool ``pool_name`` from ``rule`` (module docstring).

    ``metrics`` has ``adset_id`` and the columns the rule reads (:func:`rule_metrics`);
    ``last_changes`` (contracts.LAST_CHANGES) is also the rule's ``action_frequency`` history.
    Raises :class:`RuleError` when the rule reads a metric the frame does not have.
    """
    if pool_name not in config.by_name:
        raise ValueError(f"pool {pool_name!r} is not in the pools config")
    if "adset_id" not in metrics.columns:
        raise ValueError(f"metrics is missing column 'adset_id'; has {metrics.columns}")
    holders = budget_holders(entities, config).filter(pl.col("pool") == pool_name)
    if holders.height == 0:
        return contracts.empty(PROPOSALS)
    in_scope = (
        (pl.col("entity_type") == "adset")
        & ~pl.col("is_locked")
        & (pl.col("status") == "ACTIVE").fill_null(False)
    )
    outcome = _evaluate(rule, holders.filter(in_scope), entities, metrics, as_of, last_changes)
    frame = holders.join(outcome, on="entity_id", how="left", maintain_order="left")
    old, target = pl.col("old_budget"), pl.col("rule_target")
    change = target - old
    label = rule_label(rule)

    def m(expr: pl.Expr) -> pl.Expr:
        return money_text(expr, config.currency)

    wanted = (
        pl.when(pl.col("entity_type") != "adset")
        .then(pl.lit("a Meta rule moves ad-set budgets, not a CBO campaign's"))
        .when(target.is_null())
        .then(pl.lit("not evaluated (locked or not ACTIVE)"))
        .when(pl.col("rule_paused"))
        .then(pl.concat_str([pl.lit("pause ("), pl.col("rule_reason"), pl.lit(")")]))
        .when(change > 0)
        .then(pl.concat_str([pl.lit("increase to "), m(target), pl.lit(" (+"), m(change),
                             pl.lit("); "), pl.col("rule_reason")], ignore_nulls=True))
        .when(change < 0)
        .then(pl.concat_str([pl.lit("decrease to "), m(target), pl.lit(" (-"), m(-change),
                             pl.lit("); "), pl.col("rule_reason")], ignore_nulls=True))
        .otherwise(pl.concat_str([pl.lit("no change ("), pl.col("rule_reason"), pl.lit(")")],
                                 ignore_nulls=True))
    )  # fmt: skip
    rule_wanted = target.is_not_null() & ((change != 0) | pl.col("rule_paused"))
    return frame.select(
        "entity_id",
        pl.when(pl.col("rule_paused")).then(None).otherwise(target).alias("target_budget"),
        pl.col("rule_paused").fill_null(False).alias("pause"),
        # the rule decides amounts; where a step cannot give everyone all, the largest wanted
        # change (relative to the budget) goes first
        (change.cast(pl.Float64) / old.cast(pl.Float64).clip(1, None)).alias("merit"),
        pl.when(rule_wanted).then(pl.lit(label)).alias("trigger"),
        pl.lit(None, dtype=pl.Float64).alias("score"),
        pl.concat_str([pl.lit(f'meta rule "{label}": '), wanted]).alias("why"),
    ).cast(PROPOSALS)  # type: ignore[arg-type]


def _evaluate(
    rule: MetaRule,
    holders: pl.DataFrame,
    entities: pl.DataFrame,
    metrics: pl.DataFrame,
    as_of: datetime,
    last_changes: pl.DataFrame | None,
) -> pl.DataFrame:
    """Run the rule on the in-scope ad sets: ``entity_id, rule_target, rule_paused, …``."""
    out_schema = {
        "entity_id": pl.Utf8,
        "rule_target": pl.Int64,
        "rule_paused": pl.Boolean,
        "rule_matched": pl.Boolean,
        "rule_reason": pl.Utf8,
    }
    if holders.height == 0:
        return pl.DataFrame(schema=out_schema)
    ents = entities.select(
        pl.col("entity_id").cast(pl.Utf8),
        pl.col("entity_type").cast(pl.Utf8),
        pl.col("name").cast(pl.Utf8),
    )
    names = ents.filter(pl.col("entity_type") == "adset").select("entity_id", "name")
    campaign_names = ents.filter(pl.col("entity_type") == "campaign").select(
        pl.col("entity_id").alias("campaign_id"), pl.col("name").alias("campaign_name")
    )
    adsets = (
        holders.select(
            pl.col("entity_id").alias("adset_id"),
            "campaign_id",
            "status",
            pl.col("old_budget").alias("daily_budget"),
            pl.lit(None, dtype=pl.Int64).alias("lifetime_budget"),
            pl.lit(None, dtype=pl.Int64).alias("lifetime_spend"),
        )
        .join(names.rename({"entity_id": "adset_id"}), on="adset_id", how="left")
        .join(campaign_names.unique("campaign_id"), on="campaign_id", how="left")
    )
    # Plain metric names stand for DEFAULT_PRESET's window: a rule over another preset must
    # find its own <preset>__<metric> columns, never silently read these.
    plain_ok = rule.time_preset is None or (
        PRESET_WINDOW_HOURS.get(rule.time_preset) == _DEFAULT_HOURS
    )
    keep = [
        c
        for c in metrics.columns
        if c == "adset_id" or (c not in adsets.columns and (plain_ok or c not in METRIC_NAMES))
    ]
    adsets = adsets.join(
        metrics.select(keep).with_columns(pl.col("adset_id").cast(pl.Utf8)),
        on="adset_id",
        how="left",
    )
    last_applied: dict[str, datetime] = {}
    if last_changes is not None and rule.action_frequency_minutes is not None:
        latest = (
            contracts.conform(last_changes, contracts.LAST_CHANGES)
            .group_by("entity_id")
            .agg(pl.col("changed_at").max())
            .drop_nulls()
        )
        last_applied = dict(zip(latest["entity_id"], latest["changed_at"], strict=True))
    try:
        result = apply_rule(rule, adsets, now=as_of, last_applied=last_applied)
    except RuleError as exc:
        raise RuleError(f"meta rule {rule_label(rule)!r}: {exc}") from exc
    return result.select(
        pl.col("adset_id").alias("entity_id"),
        pl.col("new_budget").alias("rule_target"),
        pl.col("paused").alias("rule_paused"),
        pl.col("matched").alias("rule_matched"),
        pl.col("reason").alias("rule_reason"),
    ).cast(out_schema)  # type: ignore[arg-type]
