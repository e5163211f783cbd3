"""Signals: the normalised score components, from the window metrics and each entity's own
baseline.

The heavy aggregation runs in DuckDB (:mod:`~budget_pipeline.engine.insight_sums` for the
windows, :mod:`~budget_pipeline.engine.baselines` for the lookbacks and baselines; their names
stay importable from here); polars turns the per-entity sums into raw metrics and components
in [0, 1] where 0.5 means "on the entity's own baseline" (SPEC §3).

Components (k = ``Settings.score_steepness``, default 2):

- ratio components use ``s = r^k / (1 + r^k)``, computed as ``1 / (1 + r^-k)`` so a huge or
  tiny r saturates at 1 or 0 instead of overflowing: ``s_roas`` (r = roas / baseline roas),
  ``s_cpa`` (r = baseline cpa / cpa, i.e. conversions per unit spend against the baseline's),
  ``s_engagement`` (r = ctr / baseline ctr) and ``s_velocity`` (r = conversions per unit spend
  in the later half of the window / the earlier half);
- ``s_frequency`` is 0.5 at or below ``Settings.frequency_threshold`` and
  ``0.5 * (threshold / frequency)^k`` above it: frequency can only pull a score down.

Missing and degenerate values (no NaN leaves this module):

- raw metrics are null when their denominator is zero: roas and cpa without spend, ctr and
  cpm without impressions, frequency without reach. ``cpa`` is +inf when there was spend but
  no conversion (the same for ``baseline_cpa``);
- a ratio component is 0.5 (no evidence either way) when either side is null (no spend in the
  window, no baseline spend, no impressions, either half of the window without spend) or both
  sides are 0; 1.0 when only the baseline side is 0 (e.g. conversions now, none in the
  baseline) and 0.0 when only the current side is 0 (e.g. spend but no conversion);
- ``s_frequency`` is 0.5 when frequency is null;
- ``velocity_trend`` (raw) is null where s_velocity is 0.5 by the rule above and +inf when
  only the earlier half had no conversion.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from budget_pipeline.config.pools import Settings

# The queries live in insight_sums and baselines; their names stay importable from here.
from budget_pipeline.engine.baselines import (  # noqa: F401
    BASELINES,
    LOOKBACKS,
    VOLUME_WINDOW_HOURS,
    cbo_campaign_ids,
    entity_baselines,
    entity_lookbacks,
    lookback_expr,
)
from budget_pipeline.engine.credibility import evidence_z
from budget_pipeline.engine.insight_sums import (  # noqa: F401
    SUM_COLUMNS,
    WINDOW_METRICS,
    _cast,
    _time_bounds,
    window_metrics,
)

# compute_signals(): raw metrics, baselines and components per entity and evaluation point.
SIGNALS: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "campaign_id": pl.Utf8(),
    "as_of": pl.Datetime("us"),
    "lookback_hours": pl.Int64(),
    "spend": pl.Float64(),
    "impressions": pl.Int64(),
    "reach": pl.Int64(),
    "clicks": pl.Int64(),
    "conversions": pl.Float64(),
    "purchase_value": pl.Float64(),
    "hours_with_spend": pl.Int64(),
    "roas": pl.Float64(),
    "cpa": pl.Float64(),
    "frequency": pl.Float64(),
    "ctr": pl.Float64(),  # percent
    "cpm": pl.Float64(),
    "velocity_early": pl.Float64(),  # conversions per unit spend, earlier half of the window
    "velocity_late": pl.Float64(),
    "velocity_trend": pl.Float64(),  # late / early
    "baseline_days_active": pl.Int64(),
    "baseline_spend": pl.Float64(),
    "baseline_roas": pl.Float64(),
    "baseline_cpa": pl.Float64(),
    "baseline_ctr": pl.Float64(),
    "baseline_frequency": pl.Float64(),
    "s_roas": pl.Float64(),
    "s_cpa": pl.Float64(),
    "s_frequency": pl.Float64(),
    "s_engagement": pl.Float64(),
    "s_velocity": pl.Float64(),
    # standard deviations by which the window's ROAS differs from the baseline's, given its
    # purchase count (engine.credibility): the score triggers act only beyond credible_z
    "evidence_z": pl.Float64(),
}


# --- CBO campaigns: sums of their ad sets --------------------------------------------------


def _as_entities(frame: pl.DataFrame) -> pl.DataFrame:
    if "entity_id" in frame.columns:
        return frame
    return frame.with_columns(
        entity_id=pl.col("adset_id"), entity_type=pl.lit("adset", dtype=pl.Utf8())
    )


def entity_windows(windows: pl.DataFrame, campaign_ids: Sequence[str]) -> pl.DataFrame:
    """Window metrics per entity: every ad set, plus the sums of ``campaign_ids``' ad sets.

    Keyed by ``entity_id``/``entity_type`` (``"adset"`` | ``"campaign"``). A campaign's
    ``hours_with_spend`` is its busiest ad set's (a lower bound).
    """
    adsets = _as_entities(windows)
    sums = [c for c in WINDOW_METRICS if c.split("_early")[0].split("_late")[0] in SUM_COLUMNS]
    campaigns = (
        windows.filter(pl.col("campaign_id").is_in(list(campaign_ids)))
        .group_by("campaign_id", "as_of", "window_hours")
        .agg(*[pl.col(c).sum() for c in sums], pl.col("hours_with_spend").max())
        .with_columns(
            entity_id=pl.col("campaign_id"), entity_type=pl.lit("campaign", dtype=pl.Utf8())
        )
    )
    return pl.concat([adsets, campaigns], how="diagonal_relaxed")


def entity_baseline_sums(baselines: pl.DataFrame, campaign_ids: Sequence[str]) -> pl.DataFrame:
    """Baselines per entity: every ad set, plus the sums of ``campaign_ids``' ad sets.

    A campaign's active days are the union of its ad sets' (by day offset); its lookback is
    the longest of theirs (they share one when chosen by :func:`entity_lookbacks`).
    """
    adsets = _as_entities(baselines)
    sums = [c for c in BASELINES if c.removeprefix("baseline_") in SUM_COLUMNS]
    campaigns = (
        baselines.filter(pl.col("campaign_id").is_in(list(campaign_ids)))
        .group_by("campaign_id", "as_of")
        .agg(
            *[pl.col(c).sum() for c in sums],
            pl.col("lookback_hours").max(),
            pl.col("baseline_start").min(),
            pl.col("baseline_end").max(),
            pl.col("baseline_active_day_offsets").explode().drop_nulls().unique().sort(),
        )
        .with_columns(
            baseline_days_active=pl.col("baseline_active_day_offsets").list.len().cast(pl.Int64),
            entity_id=pl.col("campaign_id"),
            entity_type=pl.lit("campaign", dtype=pl.Utf8()),
        )
    )
    return pl.concat([adsets, campaigns], how="diagonal_relaxed")


# --- raw metrics and components -------------------------------------------------------------


def _per(num: pl.Expr, den: pl.Expr, scale: float = 1.0) -> pl.Expr:
    """``scale * num / den``, null when ``den`` is 0 or null."""
    return pl.when(den > 0).then(scale * num / den)


def _cpa(spend: pl.Expr, conversions: pl.Expr) -> pl.Expr:
    """spend / conversions; +inf with spend but no conversion; null without spend."""
    return (
        pl.when(spend <= 0)
        .then(None)
        .when(conversions > 0)
        .then(spend / conversions)
        .otherwise(float("inf"))
    )


def raw_metrics(prefix: str = "") -> list[pl.Expr]:
    """roas, cpa, frequency, ctr (%) and cpm from the sum columns named ``{prefix}spend`` …"""

    def col(name: str) -> pl.Expr:
        return pl.col(f"{prefix}{name}").cast(pl.Float64())

    return [
        _per(col("purchase_value"), col("spend")).alias(f"{prefix}roas"),
        _cpa(col("spend"), col("conversions")).alias(f"{prefix}cpa"),
        _per(col("impressions"), col("reach")).alias(f"{prefix}frequency"),
        _per(col("clicks"), col("impressions"), 100.0).alias(f"{prefix}ctr"),
        _per(col("spend"), col("impressions"), 1000.0).alias(f"{prefix}cpm"),
    ]


def relative_component(current: pl.Expr, baseline: pl.Expr, k: float) -> pl.Expr:
    """``r^k / (1 + r^k)`` for r = current / baseline (both >= 0), with the module's rules.

    One arithmetic expression gives them all (k > 0): r is +inf when only the baseline is 0
    (score 1), 0 when only the current side is (score 0), NaN when both are or either is
    NaN (0.5), null when either is null (0.5). The same values as the when/then chain of
    those cases (tests/engine/test_signals_components.py): the four components of
    :func:`compute_signals` took 1.6 ms at 10k ad sets, the chain 4.0."""
    ratio = current / baseline
    return (1.0 / (1.0 + ratio ** (-k))).fill_nan(0.5).fill_null(0.5).clip(0.0, 1.0)


def frequency_component(frequency: pl.Expr, threshold: float, k: float) -> pl.Expr:
    """0.5 at or below ``threshold``, ``0.5 * (threshold / frequency)^k`` above it."""
    frequency = frequency.fill_nan(None)
    return (
        pl.when(frequency.is_null() | (frequency <= threshold))
        .then(0.5)
        .otherwise(0.5 * (threshold / frequency) ** k)
        .fill_nan(0.5)
        .clip(0.0, 0.5)
    )


def compute_signals(
    windows: pl.DataFrame, baselines: pl.DataFrame, settings: Settings, *, sort: bool = True
) -> pl.DataFrame:
    """Raw metrics and components per entity, each over its own lookback window.

    ``windows`` is :func:`window_metrics` output (or :func:`entity_windows`), any number of
    window lengths; ``baselines`` is :func:`entity_baselines` output (or
    :func:`entity_baseline_sums`). Each baseline row picks the window row whose
    ``window_hours`` equals its ``lookback_hours``; a window without a baseline row, or a
    baseline without activity in its window, gives no row. Baseline ratios are recomputed
    from the sums. Returns :data:`SIGNALS`, never NaN, sorted by point, entity type and id
    (``sort=False``: in no set order, for a caller that sorts its own result).
    """
    k = settings.score_steepness
    keys = ["entity_id", "entity_type", "as_of"]
    base_cols = [
        "lookback_hours",
        "baseline_days_active",
        *(f"baseline_{c}" for c in SUM_COLUMNS),
    ]
    base = _as_entities(baselines).select(*keys, *base_cols)
    joined = _as_entities(windows).join(
        base,
        left_on=[*keys, "window_hours"],
        right_on=[*keys, "lookback_hours"],
        how="inner",
    )
    joined = joined.with_columns(lookback_hours=pl.col("window_hours"))
    if joined.height == 0:
        return pl.DataFrame(schema=SIGNALS)

    def rate(half: str) -> pl.Expr:
        return _per(pl.col(f"conversions{half}"), pl.col(f"spend{half}"))

    # Credibility: m pseudo-conversions at the entity's own baseline CPA and order value are
    # added to the current window, so a handful of conversions (or none, by Poisson chance)
    # stays near "on baseline" while strong evidence still moves the score. m = 0 disables.
    m = settings.evidence_conversions
    has_base = pl.col("baseline_conversions") > 0
    pseudo_spend = (
        pl.when(has_base)
        .then(m * pl.col("baseline_spend") / pl.col("baseline_conversions"))
        .otherwise(0.0)
    )
    pseudo_value = (
        pl.when(has_base)
        .then(m * pl.col("baseline_purchase_value") / pl.col("baseline_conversions"))
        .otherwise(0.0)
    )
    pseudo_conv = pl.when(has_base).then(pl.lit(m)).otherwise(0.0)
    shrunk_roas = _per(pl.col("purchase_value") + pseudo_value, pl.col("spend") + pseudo_spend)
    shrunk_rate = _per(pl.col("conversions") + pseudo_conv, pl.col("spend") + pseudo_spend)

    out = joined.with_columns(
        *raw_metrics(),
        *raw_metrics("baseline_"),
        velocity_early=rate("_early"),
        velocity_late=rate("_late"),
        # columns, not expressions inlined in the components: read four times there, they
        # cost 9 of compute_signals' 26 ms at 10k ad sets (dropped by the final cast)
        shrunk_roas=shrunk_roas,
        shrunk_rate=shrunk_rate,
    ).with_columns(
        velocity_trend=pl.when(
            pl.col("velocity_early").is_null()
            | pl.col("velocity_late").is_null()
            | ((pl.col("velocity_early") == 0) & (pl.col("velocity_late") == 0))
        )
        .then(None)
        .when(pl.col("velocity_early") == 0)
        .then(float("inf"))
        .otherwise(pl.col("velocity_late") / pl.col("velocity_early"))
        # inf / inf (rates of sub-normal spends) is undefined: no trend, like no data
        .fill_nan(None),
        s_roas=relative_component(pl.col("shrunk_roas"), pl.col("baseline_roas"), k),
        s_cpa=relative_component(
            pl.col("shrunk_rate"),
            _per(pl.col("baseline_conversions"), pl.col("baseline_spend")),
            k,
        ),
        s_frequency=frequency_component(pl.col("frequency"), settings.frequency_threshold, k),
        s_engagement=relative_component(pl.col("ctr"), pl.col("baseline_ctr"), k),
        s_velocity=relative_component(pl.col("velocity_late"), pl.col("velocity_early"), k),
        evidence_z=evidence_z(
            pl.col("conversions"),
            pl.when(pl.col("baseline_roas") > 0).then(pl.col("roas") / pl.col("baseline_roas")),
        ),
    )
    out = _cast(out, SIGNALS)
    return out.sort("as_of", "entity_type", "entity_id") if sort else out
