"""The pools file: budget pools, their tiers, floors, ceilings, weights, triggers and guards.

Loaded from YAML (``BUDGET_PIPELINE_POOLS``) and validated on load: every error names the
field path and the bad value, and nothing is half-loaded. Amounts in the file are major units
per day (as a marketer writes them); :meth:`PoolsConfig.floor_minor` and friends give the
integer minor units the engine plans in. Every amount is at most :data:`MAX_AMOUNT` (10^13
major units, 10^15 minor units of a two-decimal currency) and the pools' ceilings add up to at
most 2^62 minor units, so every amount and every sum the engine forms fits int64.
"""

from __future__ import annotations

import fnmatch
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from budget_pipeline.config.alerts import AlertsConfig
from budget_pipeline.config.loading import load_yaml_model
from budget_pipeline.money import MAX_AMOUNT_MINOR, MAX_TOTAL_MINOR, minor_factor, to_minor

Pct = Annotated[float, Field(ge=0, le=100)]
Unit = Annotated[float, Field(ge=0, le=1)]

# The largest amount (major units) a pools or scenario file may hold: 10^15 minor units of a
# two-decimal currency, so it and any sum the engine forms of such amounts fits int64.
MAX_AMOUNT = MAX_AMOUNT_MINOR // 100


def _within_max_amount(value: float) -> float:
    if value > MAX_AMOUNT:
        raise ValueError(
            f"{value:g} is above the largest amount {MAX_AMOUNT:,} (amounts and their sums must "
            "fit 64-bit integers of minor units)"
        )
    return value


Amount = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_within_max_amount)]
"""A money amount in major units: finite, >= 0, at most :data:`MAX_AMOUNT`."""


class _Strict(BaseModel):
    # inf/NaN would pass range checks (NaN compares False) and fail much later, or silently
    # never fire a trigger: reject them on load, naming the field.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Weights(_Strict):
    """Weights of the composite score's signals (SPEC §3). They must sum to 1."""

    roas: Unit = 0.40
    cpa: Unit = 0.30
    frequency: Unit = 0.20
    engagement: Unit = 0.10
    velocity: Unit = 0.0

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = self.roas + self.cpa + self.frequency + self.engagement + self.velocity
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1.0, got {total:.4f} ({self.model_dump()})")
        return self


class ScoreThresholds(_Strict):
    """Threshold triggers on the composite score (SPEC §4 defaults)."""

    increase_above: Unit = 0.85
    increase_persistence: Annotated[int, Field(ge=1, le=100)] = 3
    increase_pct: Pct = 15.0
    decrease_below: Unit = 0.55
    decrease_persistence: Annotated[int, Field(ge=1, le=100)] = 2
    decrease_pct: Pct = 25.0
    pause_below: Unit = 0.35
    pause_persistence: Annotated[int, Field(ge=1, le=100)] = 1
    # A threshold acts only on a deviation this many standard deviations credible given the
    # purchase count (1.645: a 90 % interval excludes the baseline). 0 turns the gate off.
    credible_z: Annotated[float, Field(ge=0, le=10)] = 1.645

    @model_validator(mode="after")
    def _ordered(self) -> ScoreThresholds:
        if not self.pause_below <= self.decrease_below < self.increase_above:
            raise ValueError(
                "thresholds must satisfy pause_below <= decrease_below < increase_above, got "
                f"{self.pause_below} / {self.decrease_below} / {self.increase_above}"
            )
        return self


Metric = Literal["roas", "cpa", "spend", "frequency", "ctr", "conversions", "value", "cpm"]
Action = Literal["increase", "decrease", "pause", "alert", "flag_creative"]


class Condition(_Strict):
    """One comparison on a raw metric over its own window, e.g. ``roas over 72 h < 1.6``.

    The right-hand side is ``value``, or ``target_multiple`` × the pool's target for that
    metric (``cpa_target`` for cpa, ``roas_target`` for roas).
    """

    metric: Metric
    window_hours: Annotated[int, Field(ge=1, le=24 * 28)] = 72
    op: Literal["<", "<=", ">", ">="]
    value: float | None = None
    target_multiple: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_rhs(self) -> Condition:
        if (self.value is None) == (self.target_multiple is None):
            raise ValueError("a condition needs exactly one of 'value' or 'target_multiple'")
        return self


class CompoundTrigger(_Strict):
    """A trigger on raw metrics: ``all`` of its conditions (AND) or ``any`` of them (OR)."""

    name: Annotated[str, Field(min_length=1)]
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    persistence: Annotated[int, Field(ge=1, le=100)] = 1
    cooldown_hours: Annotated[float, Field(ge=0)] | None = None
    min_spend: Amount = 0.0
    action: Action
    pct: Pct | None = None
    flag_creative_review: bool = False

    @model_validator(mode="after")
    def _shape(self) -> CompoundTrigger:
        if bool(self.all) == bool(self.any):
            raise ValueError(f"trigger {self.name!r} needs exactly one non-empty 'all' or 'any'")
        if self.action in ("increase", "decrease") and self.pct is None:
            raise ValueError(f"trigger {self.name!r}: action {self.action!r} needs 'pct'")
        return self

    @property
    def conditions(self) -> list[Condition]:
        return list(self.all or self.any or [])


class Members(_Strict):
    """Which campaigns belong to a pool: explicit ids, or shell-style name patterns."""

    campaign_ids: list[str] = Field(default_factory=list)
    campaign_names: list[str] = Field(default_factory=list)


class Pool(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9_]+$")]
    tier: Annotated[int, Field(ge=1, le=10)]
    floor: Amount
    ceiling: Annotated[Amount, Field(gt=0)]
    mode: Literal["observe", "live"] = "observe"
    weights: Weights = Weights()
    thresholds: ScoreThresholds = ScoreThresholds()
    triggers: list[CompoundTrigger] = Field(default_factory=list)
    members: Members = Members()
    locked: list[str] = Field(default_factory=list)
    cpa_target: Annotated[Amount, Field(gt=0)] | None = None
    roas_target: Annotated[float, Field(gt=0)] | None = None
    conversion_action: str | None = None
    # How the pool's money moves: "marginal_return" (fitted response curves; the default),
    # "composite" (the seed's score thresholds and triggers) or "meta_rule" (a native rule).
    policy: Literal["composite", "meta_rule", "marginal_return"] = "marginal_return"
    meta_rule: str | None = None
    # Prior curvature e of the pool's response curves (value ∝ spend ** e: diminishing
    # returns); each ad set's own spend changes update it (engine/response_curves.py).
    response_elasticity: Annotated[float, Field(gt=0.05, lt=0.95)] = 0.6

    @model_validator(mode="after")
    def _bounds(self) -> Pool:
        if self.floor > self.ceiling:
            raise ValueError(
                f"pool {self.name!r}: floor {self.floor} is above ceiling {self.ceiling}"
            )
        if self.policy == "meta_rule" and not self.meta_rule:
            raise ValueError(f"pool {self.name!r}: policy 'meta_rule' needs 'meta_rule' (a path)")
        for trig in self.triggers:
            for cond in trig.conditions:
                if cond.target_multiple is not None:
                    target = {"cpa": self.cpa_target, "roas": self.roas_target}.get(cond.metric)
                    if target is None:
                        raise ValueError(
                            f"pool {self.name!r}, trigger {trig.name!r}: target_multiple on "
                            f"{cond.metric!r} needs the pool's {cond.metric}_target"
                        )
        return self


class Settings(_Strict):
    """Account-wide defaults and guards (SPEC §3, §4, §7, §8)."""

    learning_limit_pct: Annotated[float, Field(gt=0, le=20)] = 20.0
    learning_cap_pct: Annotated[float, Field(gt=0, le=20)] = 15.0
    cooldown_hours: Annotated[float, Field(ge=0)] = 6.0
    min_change_interval_hours: Annotated[float, Field(ge=0)] = 6.0
    max_changes_per_hour: Annotated[int, Field(ge=1, le=4)] = 4
    interval_hours: Annotated[int, Field(ge=1, le=24 * 7)] = 24
    lookback_hours: Annotated[int, Field(ge=1, le=24 * 28)] | None = None
    baseline_days: Annotated[int, Field(ge=7, le=90)] = 30
    min_history_days: Annotated[int, Field(ge=1, le=90)] = 7
    min_baseline_spend: Amount = 300.0
    frequency_threshold: Annotated[float, Field(gt=0)] = 3.0
    score_steepness: Annotated[float, Field(gt=0, le=10)] = 2.0
    # Pseudo-conversions at the entity's own baseline rate added to the current window before
    # ROAS and CPA are compared with the baseline: thin data stays near 0.5 (0 disables).
    evidence_conversions: Annotated[float, Field(ge=0, le=1000)] = 5.0
    cross_tier_margin: Unit = 0.10
    # No crumbs: a move smaller than this many major units, or than this share of the budget,
    # is not made (each edit is one of Meta's 4 per hour and may restart learning).
    min_move: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    min_move_pct: Annotated[float, Field(ge=0, le=20)] = 3.0
    min_adset_budget: Amount = 1.0
    conversion_action: str = "purchase"
    kill_switch: bool = False
    skip_learning: bool = False
    repull_days: Annotated[int, Field(ge=1, le=28)] = 3
    # Expected share of an hour's conversions already reported N hours after it ended
    # (late attribution); linear between the knots, 1.0 from the last one on. Signals divide
    # recent hours by it so a young window is not mistaken for a drop. {} turns it off.
    attribution_maturity: dict[int, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: {0: 0.5, 24: 0.75, 48: 0.88, 72: 1.0}
    )

    @model_validator(mode="after")
    def _cap_within_limit(self) -> Settings:
        if self.learning_cap_pct > self.learning_limit_pct:
            raise ValueError(
                f"learning_cap_pct {self.learning_cap_pct} exceeds learning_limit_pct "
                f"{self.learning_limit_pct}"
            )
        return self

    @field_validator("attribution_maturity")
    @classmethod
    def _maturity_monotone(cls, value: dict[int, float]) -> dict[int, float]:
        knots = sorted(value.items())
        if any(h < 0 for h, _ in knots):
            raise ValueError(f"attribution_maturity hours must be >= 0, got {dict(knots)}")
        shares = [s for _, s in knots]
        if shares != sorted(shares):
            raise ValueError(f"attribution_maturity must not decrease with age, got {dict(knots)}")
        return dict(knots)

    def maturity_curve(self) -> list[float]:
        """Share reported at each whole hour of age 0..last knot − 1 (for SQL, 1-indexed)."""
        if not self.attribution_maturity:
            return []
        hours = sorted(self.attribution_maturity)
        shares = [self.attribution_maturity[h] for h in hours]
        last = hours[-1]
        out = []
        for age in range(last):
            for (h0, s0), (h1, s1) in zip(
                zip(hours, shares, strict=False),
                zip(hours[1:], shares[1:], strict=False),
                strict=False,
            ):
                if h0 <= age < h1:
                    out.append(s0 + (s1 - s0) * (age - h0) / (h1 - h0))
                    break
            else:
                out.append(shares[0] if age < hours[0] else 1.0)
        return out

    def lookback_for(self, daily_spend: float) -> int:
        """Lookback hours scaled by spend volume (SPEC §4) unless set explicitly."""
        if self.lookback_hours is not None:
            return self.lookback_hours
        if daily_spend >= 2000:
            return 48
        if daily_spend <= 200:
            return 96
        return 72


class PoolsConfig(_Strict):
    currency: str = "EUR"
    settings: Settings = Settings()
    pools: Annotated[list[Pool], Field(min_length=1)]
    alerts: AlertsConfig | None = None  # see config/alerts.py; secrets only via env vars

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        minor_factor(value)  # raises with the bad code
        return value.upper()

    @model_validator(mode="after")
    def _unique(self) -> PoolsConfig:
        names = [p.name for p in self.pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique, repeated: {dupes}")
        owners: dict[str, str] = {}
        for pool in self.pools:
            for cid in pool.members.campaign_ids:
                if cid in owners:
                    raise ValueError(
                        f"campaign id {cid!r} is listed in pools {owners[cid]!r} and {pool.name!r}"
                    )
                owners[cid] = pool.name
        ceilings = sum(to_minor(p.ceiling, self.currency) for p in self.pools)
        if ceilings > MAX_TOTAL_MINOR:
            raise ValueError(
                f"the pools' ceilings add up to {ceilings:,} minor units, above the largest "
                f"total {MAX_TOTAL_MINOR:,} (sums of budgets must fit a 64-bit integer)"
            )
        return self

    @cached_property
    def by_name(self) -> dict[str, Pool]:
        return {p.name: p for p in self.pools}

    def floor_minor(self, pool: str) -> int:
        return to_minor(self.by_name[pool].floor, self.currency)

    def ceiling_minor(self, pool: str) -> int:
        return to_minor(self.by_name[pool].ceiling, self.currency)

    @property
    def min_adset_budget_minor(self) -> int:
        return to_minor(self.settings.min_adset_budget, self.currency)

    def pool_for_campaign(self, campaign_id: str, campaign_name: str) -> str | None:
        """The pool a campaign belongs to: an explicit id wins, then the first name pattern."""
        for pool in self.pools:
            if campaign_id in pool.members.campaign_ids:
                return pool.name
        for pool in self.pools:
            if any(fnmatch.fnmatchcase(campaign_name, pat) for pat in pool.members.campaign_names):
                return pool.name
        return None

    def is_locked(self, *entity_ids: str) -> bool:
        locked = {e for p in self.pools for e in p.locked}
        return any(e in locked for e in entity_ids)


def load_pools(path: str | Path) -> PoolsConfig:
    """Load and validate a pools file; raises :class:`ConfigError` naming field and value."""
    return load_yaml_model(PoolsConfig, path, what="pools file")


DEFAULT_POOLS_PATH = Path(__file__).with_name("default_pools.yaml")
