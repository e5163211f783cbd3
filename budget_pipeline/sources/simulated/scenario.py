"""The simulated account's scenario: campaigns, ad sets and their true response curves.

A scenario is a YAML file validated on load (errors name the field path and the bad value, e.g.
``campaigns[2].adsets[0].response.elasticity``). Amounts are major units per day, as in the
pools file; the account converts budgets to integer minor units.

Response model of one ad set (see :mod:`budget_pipeline.sources.simulated.account`)::

    conversions/day = scale × (spend/day ÷ 100) ** elasticity × weekday × efficiency
    purchase value  = conversions × aov × noise (mean 1)

``weekday`` (optional, 7 factors, Monday first) is the conversion-rate multiplier by weekday;
unset, the account's built-in curve (weekends ~12 % better) applies.

``shifts`` set the ad set's structural efficiency level from a day index on (0-based from
``start``; a later shift replaces an earlier one, so ``efficiency: 1.0`` restores the start).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from budget_pipeline.config.loading import load_yaml_model
from budget_pipeline.config.pools import Amount as MoneyAmount
from budget_pipeline.config.pools import Pool
from budget_pipeline.money import MAX_TOTAL_MINOR, MoneyError, minor_factor, to_minor
from budget_pipeline.sources.simulated.scenario_cache import cached_load, scenario_header
from budget_pipeline.sources.simulated.scenario_header import Days, Timezone, quick_header

MetaId = Annotated[str, Field(pattern=r"^[0-9]{1,30}$")]
# Finite, > 0, at most config.pools.MAX_AMOUNT major units (fits int64 minor units).
Amount = Annotated[MoneyAmount, Field(gt=0)]
Status = Literal["ACTIVE", "PAUSED"]

DEFAULT_SCENARIO_PATH = Path(__file__).with_name("scenarios") / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(_Strict):
    """True response curve: ``scale`` conversions/day at 100/day spend, curvature ``elasticity``."""

    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    elasticity: Annotated[float, Field(gt=0, lt=1)]


class Shift(_Strict):
    """From day index ``day`` on, the ad set's structural efficiency is ``efficiency``."""

    day: Annotated[int, Field(ge=0)]
    efficiency: Annotated[float, Field(gt=0, le=10)]


class ScenarioAdSet(_Strict):
    id: MetaId
    name: Annotated[str, Field(min_length=1)] | None = None
    status: Status = "ACTIVE"
    daily_budget: Amount | None = None
    lifetime_budget: Amount | None = None
    end: date | None = None  # lifetime budgets: last local day of delivery (inclusive)
    response: Response
    aov: Amount
    audience: Annotated[int, Field(gt=0)]
    fatigue: Annotated[float, Field(ge=0, le=1)] = 0.0
    shifts: list[Shift] = Field(default_factory=list)
    start_day: Annotated[int, Field(ge=0)] = 0  # no delivery before this day index
    cpm: Amount = 10.0  # cost per 1,000 impressions at frequency 1, major units
    ctr: Annotated[float, Field(gt=0, le=0.5)] = 0.012  # a fraction: 0.012 = 1.2 %
    drift: Annotated[float, Field(ge=0, le=1)] = 0.05  # sd of daily log-efficiency noise

    @model_validator(mode="after")
    def _budget_shape(self) -> ScenarioAdSet:
        if self.daily_budget is not None and self.lifetime_budget is not None:
            raise ValueError(
                f"ad set {self.id}: set daily_budget or lifetime_budget, not both "
                f"(got {self.daily_budget} and {self.lifetime_budget})"
            )
        if (self.lifetime_budget is None) != (self.end is None):
            raise ValueError(
                f"ad set {self.id}: lifetime_budget and end go together "
                f"(got lifetime_budget={self.lifetime_budget}, end={self.end})"
            )
        days = [s.day for s in self.shifts]
        if len(set(days)) != len(days):
            raise ValueError(f"ad set {self.id}: two shifts on the same day ({days})")
        return self

    @property
    def display_name(self) -> str:
        return self.name or f"adset {self.id}"


class ScenarioCampaign(_Strict):
    id: MetaId
    name: Annotated[str, Field(min_length=1)]
    pool: Annotated[str, Field(min_length=1)]
    status: Status = "ACTIVE"
    daily_budget: Amount | None = None  # set => CBO: the campaign holds the budget
    adsets: Annotated[list[ScenarioAdSet], Field(min_length=1)]

    @property
    def is_cbo(self) -> bool:
        return self.daily_budget is not None


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("scenario", message), loc=loc, input=value)


def _budgets_fit_int64(campaigns: list[ScenarioCampaign], info: ValidationInfo) -> list:
    """The scenario's budgets add up to at most 2^62 minor units (their sums must fit int64)."""
    try:
        currency = str(info.data.get("currency") or "EUR")
        minor_factor(currency)
    except MoneyError:
        currency = "EUR"  # the currency's own error is reported on its field
    total = 0
    for ci, camp in enumerate(campaigns):
        amounts = [(f"campaigns[{ci}].daily_budget", camp.daily_budget)] + [
            (f"campaigns[{ci}].adsets[{ai}].{field}", getattr(adset, field))
            for ai, adset in enumerate(camp.adsets)
            for field in ("daily_budget", "lifetime_budget")
        ]
        for where, amount in amounts:
            total += 0 if amount is None else to_minor(amount, currency)
            if total > MAX_TOTAL_MINOR:
                raise ValueError(
                    f"the budgets add up to more than {MAX_TOTAL_MINOR:,} minor units (passed at "
                    f"{where}): sums of budgets must fit a 64-bit integer"
                )
    return campaigns


class Scenario(_Strict):
    seed: Annotated[int, Field(ge=0)]
    start: date  # first simulated day, account-local (the three: see ScenarioHeader)
    days: Days
    timezone: Timezone
    currency: str
    account_id: Annotated[str, Field(pattern=r"^act_[0-9]+$")] = "act_1029384756"
    pools: Annotated[list[Pool], Field(min_length=1)]
    campaigns: Annotated[
        list[ScenarioCampaign], Field(min_length=1), AfterValidator(_budgets_fit_int64)
    ]
    weekday: (
        Annotated[
            list[Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]],
            Field(min_length=7, max_length=7),
        ]
        | None
    ) = None  # conversion multiplier Monday..Sunday; None = the built-in WEEKDAY curve

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        minor_factor(value)  # raises naming the code
        return value.upper()

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        errors: list[InitErrorDetails] = []
        pool_names = [p.name for p in self.pools]
        for i, name in enumerate(pool_names):
            if name in pool_names[:i]:
                errors.append(_error(("pools", i, "name"), "pool name repeated", name))
        seen: dict[str, str] = {}

        def claim(entity_id: str, loc: tuple[str | int, ...]) -> None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)[1:]
            if entity_id in seen:
                errors.append(
                    _error(loc, f"duplicate id, already used at {seen[entity_id]}", entity_id)
                )
            else:
                seen[entity_id] = where

        for ci, camp in enumerate(self.campaigns):
            claim(camp.id, ("campaigns", ci, "id"))
            if camp.pool not in pool_names:
                errors.append(
                    _error(
                        ("campaigns", ci, "pool"),
                        f"names no pool of this scenario (pools: {', '.join(pool_names)})",
                        camp.pool,
                    )
                )
            for ai, adset in enumerate(camp.adsets):
                loc = ("campaigns", ci, "adsets", ai)
                claim(adset.id, (*loc, "id"))
                has_budget = adset.daily_budget is not None or adset.lifetime_budget is not None
                if camp.is_cbo and has_budget:
                    field = "daily_budget" if adset.daily_budget is not None else "lifetime_budget"
                    errors.append(
                        _error(
                            (*loc, field),
                            "an ad set of a CBO campaign (campaign daily_budget set) has no "
                            "budget of its own",
                            getattr(adset, field),
                        )
                    )
                elif not camp.is_cbo and not has_budget:
                    errors.append(
                        _error(
                            loc,
                            f"ad set {adset.id} has no budget: set daily_budget, or "
                            "lifetime_budget + end, or daily_budget on its campaign (CBO)",
                            adset.id,
                        )
                    )
                if adset.end is not None and adset.end < self.start:
                    errors.append(
                        _error(
                            (*loc, "end"),
                            f"end {adset.end} is before the start {self.start}",
                            adset.end,
                        )
                    )
        if errors:
            raise ValidationError.from_exception_data("Scenario", errors)
        return self

    @property
    def end(self) -> date:
        """The first day after the simulated history (``start + days``, exclusive)."""
        return self.start + timedelta(days=self.days)

    def iter_adsets(self) -> Iterator[tuple[ScenarioCampaign, ScenarioAdSet]]:
        for camp in self.campaigns:
            for adset in camp.adsets:
                yield camp, adset

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)


def parse_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (the YAML, no cache); raises ``ConfigError`` naming
    field and bad value."""
    return load_yaml_model(Scenario, path, what="scenario")


def load_scenario(path: str | Path) -> Scenario:
    """The validated scenario of a file; raises ``ConfigError`` naming field and bad value.

    Kept per file (path and a hash of its bytes) in this process and, as validated JSON,
    in the cache folder (:mod:`~budget_pipeline.sources.simulated.scenario_cache`), so a big
    scenario is parsed once, not in every step and every launched run process.
    """
    return cached_load(path, parse_scenario)


def scenario_summary(path: str | Path) -> tuple[date, int, str]:
    """(first day, days of history, timezone) of a scenario file: from the cache when it holds
    the file as it is now; else, for a big file, from its top-level keys alone
    (:func:`~budget_pipeline.sources.simulated.scenario_header.quick_header`: the rest is
    validated when the account is opened); else by loading (validating) it."""
    return scenario_header(path, parse_scenario, quick=quick_header)
