"""A simulated Meta ad account that behaves like a real one (SPEC §10).

The account simulates hourly delivery for every ad set of a :class:`Scenario`, one local day at
a time, vectorised over ad sets × 24 hours:

- spend = daily rate × utilisation of the day × intraday curve; the daily rate is the ad set's
  daily budget, its share of a CBO campaign budget, or a lifetime budget paced as
  remaining ÷ days left, paced over the calendar week as Meta documents it (see
  :mod:`~budget_pipeline.sources.simulated.pacing`: up to 75 % over on a day, at most 7 days of
  budget a week, a mid-week change restarting the allowance for the rest of the week).
- conversions ~ Poisson(scale × (rate/100) ** elasticity × weekday × efficiency), spread over
  the hours like spend, where efficiency = structural shift × fatigue × a slow AR(1) drift ×
  learning-phase penalty; purchase value = conversions × aov × lognormal noise (mean 1).
- impressions = spend ÷ CPM × 1000 (CPM rising with frequency), clicks ~ Poisson(impressions ×
  CTR), CTR and efficiency falling with fatigue; ``reach`` counts people reached for the first
  time in the trailing 7 days out of a finite audience, so frequency rises as it saturates.
- conversions and value of an hour are attributed 50 % at once, 75 % after 24 h, 88 % after
  48 h, 96 % just before 72 h and 100 % from 72 h on: a re-pull of the last 3 days restates them.

Determinism: every random draw is taken from a generator keyed by (seed, day index), with the
same shapes whatever is requested, and an hour's values depend only on what happened up to that
hour. So the same scenario, clock and applied changes give identical frames, a budget change
never rewrites the past, and a change to one ad set leaves the other ad sets' draws untouched.
Local time is a wall clock of 24 hours per day (DST transitions are not modelled).

``noise="none"`` gives the expected world: no Poisson, lognormal, drift, CPM or utilisation noise
(utilisation at its mean, conversions and value at their expectation), so the value of a budget
schedule is a deterministic number to compare policies on (used by the oracle and the tests).
``noise="expected"`` keeps the seed's world (drift, utilisation, CPM) and takes only the
purchases at their expectation: the value a schedule earns on that seed without purchase luck
(what ``simulate`` and ``bench decisions`` score policies by).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from budget_pipeline import contracts
from budget_pipeline.money import largest_remainder_split, minor_factor, to_minor
from budget_pipeline.sources.simulated.day import (  # noqa: F401  (re-exported)
    ATTRIBUTION_FINAL_HOURS,
    ATTRIBUTION_HOURS,
    ATTRIBUTION_SHARE,
    BURST_PROBABILITY,
    CPM_NOISE,
    CPM_PER_FREQUENCY,
    DRIFT_PERSISTENCE,
    FATIGUE_FLOOR,
    FATIGUE_FREE_FREQUENCY,
    HOURS_PER_DAY,
    INTRADAY,
    LEARNING_HOURS,
    LEARNING_PENALTY,
    LEARNING_THRESHOLD,
    MEAN_UTILISATION,
    NORMAL_APPROX_ABOVE,
    RECENT_REACH_KEEP,
    VALUE_SIGMA,
    WEEKDAY,
    Day,
    simulate_day,
)
from budget_pipeline.sources.simulated.delivery import delivery
from budget_pipeline.sources.simulated.scenario import Scenario

_HOUR = timedelta(hours=1)
# "full": the world as it happens (drift, delivery, purchases drawn); "expected": the same world
# with every purchase at its expectation (the value a schedule earns without purchase luck);
# "none": no randomness at all (no drift either).
Noise = Literal["full", "expected", "none"]


def attributed_share(age_hours: np.ndarray | float) -> np.ndarray:
    """Share of an hour's final conversions reported ``age_hours`` after the hour ended."""
    age = np.asarray(age_hours, dtype=np.float64)
    early = np.interp(age, ATTRIBUTION_HOURS, ATTRIBUTION_SHARE)
    return np.where(age >= ATTRIBUTION_FINAL_HOURS, 1.0, early)


@dataclass(frozen=True)
class _Change:
    hour: int  # hours since the scenario start; effective from this hour on
    entity_id: str
    field: str  # "daily_budget" | "lifetime_budget" | "status"
    value: int | str


@dataclass
class _Settings:
    """Budgets and statuses in effect: minor units; an ad set's budget is daily or lifetime."""

    adset_budget: np.ndarray
    adset_active: np.ndarray
    campaign_budget: np.ndarray
    campaign_active: np.ndarray

    def copy(self) -> _Settings:
        return _Settings(*(a.copy() for a in vars(self).values()))


@dataclass(frozen=True)
class NowView:
    """What the oracle needs at ``now``: true curves, deliverability and effective budgets."""

    adset_ids: list[str]
    scale: np.ndarray
    elasticity: np.ndarray
    aov: np.ndarray
    efficiency: np.ndarray  # true efficiency multiplier at now (without weekday seasonality)
    deliverable: np.ndarray  # active, started, and (lifetime) not ended nor spent out
    daily_rate: np.ndarray  # int64 minor units per day each ad set is effectively given now
    currency: str


class SimulatedAccount:
    """A deterministic simulated ad account whose clock moves with :meth:`advance`.

    The clock ``now`` (naive, account-local) starts at the end of the scenario's history
    (``start + days``, 00:00). Budget and status changes take effect from ``now``; hours after
    ``now`` are simulated on demand with the budgets in effect, which closes the loop.
    """

    def __init__(self, scenario: Scenario, state: dict | None = None, *, noise: Noise = "full"):
        if noise not in ("full", "expected", "none"):
            raise ValueError(f"noise must be 'full', 'expected' or 'none', got {noise!r}")
        self.scenario = scenario
        self.noise = noise
        self._weekday = np.array(scenario.weekday or WEEKDAY, dtype=np.float64)
        self.account_id = scenario.account_id
        self.currency = scenario.currency
        self.timezone = scenario.timezone
        self._factor = minor_factor(scenario.currency)
        self._start_dt = datetime.combine(scenario.start, time())
        self._epoch_day = (scenario.start - date(1970, 1, 1)).days
        self._first_hour = scenario.days * HOURS_PER_DAY

        pairs = sorted(scenario.iter_adsets(), key=lambda ca: ca[1].id)
        campaigns = sorted(scenario.campaigns, key=lambda c: c.id)
        self._campaigns = campaigns
        self._adsets = [a for _, a in pairs]
        self._campaign_ids = [c.id for c in campaigns]
        self._campaign_index = {c.id: i for i, c in enumerate(campaigns)}
        self._adset_ids = [a.id for a in self._adsets]
        self._adset_index = {a: i for i, a in enumerate(self._adset_ids)}
        self._adset_campaign = np.array([self._campaign_index[c.id] for c, _ in pairs])
        self._adset_pool = [c.pool for c, _ in pairs]
        self._cbo = np.array([c.is_cbo for c in campaigns], dtype=bool)
        self._cbo_member = self._cbo[self._adset_campaign]
        self._lifetime = np.array([a.lifetime_budget is not None for a in self._adsets])
        self._end_day = np.array(
            [(a.end - scenario.start).days if a.end else 1 << 30 for a in self._adsets]
        )
        self._start_day = np.array([a.start_day for a in self._adsets])

        def column(name: str) -> np.ndarray:
            return np.array([getattr(a, name) for a in self._adsets], dtype=np.float64)

        self._scale = np.array([a.response.scale for a in self._adsets])
        self._elasticity = np.array([a.response.elasticity for a in self._adsets])
        self._aov = column("aov")
        self._audience = column("audience")
        self._fatigue = column("fatigue")
        self._cpm = column("cpm")
        self._ctr = column("ctr")
        self._drift_sd = column("drift")
        self._shifts = sorted(
            (s.day, i, s.efficiency) for i, a in enumerate(self._adsets) for s in a.shifts
        )

        def minor(amount: float | None) -> int:
            return 0 if amount is None else to_minor(amount, self.currency)

        self._initial = _Settings(
            adset_budget=np.array(
                [minor(a.daily_budget or a.lifetime_budget) for a in self._adsets],
                dtype=np.int64,
            ),
            adset_active=np.array([a.status == "ACTIVE" for a in self._adsets], dtype=bool),
            campaign_budget=np.array([minor(c.daily_budget) for c in campaigns], dtype=np.int64),
            campaign_active=np.array([c.status == "ACTIVE" for c in campaigns], dtype=bool),
        )
        self._current = self._initial.copy()
        self._changes: list[_Change] = []
        self._learning: list[tuple[int, np.ndarray]] = []  # (hour, affected ad set indices)
        self._days: list[Day] = []
        self._sim_settings: _Settings | None = None  # settings at the next day to simulate
        self._sim_next_change = 0
        self._now_hour = self._first_hour
        if state is not None:
            self._restore(state)

    # ---- the clock -------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The account clock: naive account-local time (always on the hour)."""
        return self._start_dt + self._now_hour * _HOUR

    def advance(self, hours: int) -> None:
        """Move the clock forward; the new hours run with the budgets in effect."""
        if isinstance(hours, bool) or not isinstance(hours, int | np.integer) or hours < 0:
            raise ValueError(f"advance needs a non-negative whole number of hours, got {hours!r}")
        self._now_hour += int(hours)

    # ---- what the API would report ---------------------------------------------------------

    def entities(self) -> pl.DataFrame:
        """Campaigns and ad sets with budgets (minor units) and statuses in effect at ``now``."""
        cur = self._current
        rows: list[dict[str, Any]] = []
        for ci, camp in enumerate(self._campaigns):
            rows.append(
                {
                    "entity_id": camp.id,
                    "entity_type": "campaign",
                    "campaign_id": camp.id,
                    "name": camp.name,
                    "status": "ACTIVE" if cur.campaign_active[ci] else "PAUSED",
                    "budget_type": "daily" if self._cbo[ci] else None,
                    "daily_budget": int(cur.campaign_budget[ci]) if self._cbo[ci] else None,
                }
            )
        spent = self._spent_before(self._now_hour) if self._lifetime.any() else None
        for ai, adset in enumerate(self._adsets):
            row: dict[str, Any] = {
                "entity_id": adset.id,
                "entity_type": "adset",
                "campaign_id": self._campaign_ids[self._adset_campaign[ai]],
                "name": adset.display_name,
                "status": "ACTIVE" if cur.adset_active[ai] else "PAUSED",
            }
            budget = int(cur.adset_budget[ai])
            if self._lifetime[ai]:
                assert spent is not None
                row |= {
                    "budget_type": "lifetime",
                    "lifetime_budget": budget,
                    "budget_remaining": max(budget - int(spent[ai]), 0),
                    "end_date": adset.end,
                }
            elif not self._cbo_member[ai]:
                row |= {"budget_type": "daily", "daily_budget": budget}
            rows.append(row)
        frame = pl.DataFrame(rows, schema=contracts.ENTITIES)
        frame = frame.with_columns(pl.lit(self.currency).alias("currency"))
        return contracts.conform(frame, contracts.ENTITIES)

    def hourly_insights(
        self, start: date, end: date, *, as_of: datetime | None = None
    ) -> pl.DataFrame:
        """Hourly ad-set Insights for local dates ``start``..``end`` inclusive, as seen at ``as_of``.

        Only hours that ended at or before ``as_of`` (default ``now``) are reported; conversions
        and value of the last 72 h are partly attributed and grow as ``as_of`` advances.
        """
        if start < self.scenario.start:
            raise ValueError(
                f"start date {start} is before the simulated history, which begins "
                f"{self.scenario.start}"
            )
        if end < start:
            raise ValueError(f"end date {end} is before start date {start}")
        as_of_hour = self._as_of_hour(as_of)
        lo = (start - self.scenario.start).days * HOURS_PER_DAY
        hi = min(
            (end - self.scenario.start).days * HOURS_PER_DAY + HOURS_PER_DAY, math.floor(as_of_hour)
        )
        if hi <= lo:
            return contracts.empty(contracts.INSIGHTS)
        day_lo, day_hi = lo // HOURS_PER_DAY, -(-hi // HOURS_PER_DAY)
        self._ensure_days(day_hi)
        days = self._days[day_lo:day_hi]
        cut = slice(lo - day_lo * HOURS_PER_DAY, hi - day_lo * HOURS_PER_DAY)

        def hours(name: str) -> np.ndarray:
            return np.concatenate([getattr(d, name) for d in days], axis=1)[:, cut]

        spend = hours("spend")
        adset, col = np.nonzero(spend > 0)
        hour_index = lo + col
        conversions = hours("conversions")[adset, col]
        share = attributed_share(as_of_hour - (hour_index + 1))
        reported = np.floor(conversions * share + hours("attribution_draw")[adset, col])
        value = hours("value")[adset, col]
        reported_value = np.where(
            conversions > 0, value * reported / np.maximum(conversions, 1), 0.0
        )
        rows = pl.Series(adset, dtype=pl.UInt32)
        frame = pl.DataFrame(
            {
                "date": pl.Series(
                    (self._epoch_day + hour_index // HOURS_PER_DAY).astype(np.int32)
                ).cast(pl.Date),
                "hour": (hour_index % HOURS_PER_DAY).astype(np.int8),
                "campaign_id": pl.Series(self._campaign_ids, dtype=pl.Utf8).gather(
                    pl.Series(self._adset_campaign[adset], dtype=pl.UInt32)
                ),
                "adset_id": pl.Series(self._adset_ids, dtype=pl.Utf8).gather(rows),
                "spend": spend[adset, col] / self._factor,
                "impressions": hours("impressions")[adset, col],
                "reach": hours("reach")[adset, col],
                "clicks": hours("clicks")[adset, col],
                "conversions": reported,
                "purchase_value": np.round(reported_value * self._factor) / self._factor,
            }
        )
        return contracts.conform(frame, contracts.INSIGHTS)

    def delivery(self, start: date, end: date) -> pl.DataFrame:
        """Final (fully attributed) spend, conversions and value per ad set and day.

        See :func:`budget_pipeline.sources.simulated.delivery.delivery`; the days must be over.
        """
        return delivery(self, start, end)

    def response_curves(self) -> pl.DataFrame:
        """The true response curve of every ad set and its efficiency multiplier at ``now``."""
        view = self.now_view()
        return pl.DataFrame(
            {
                "adset_id": view.adset_ids,
                "campaign_id": [self._campaign_ids[c] for c in self._adset_campaign],
                "pool": self._adset_pool,
                "scale": view.scale,
                "elasticity": view.elasticity,
                "aov": view.aov,
                "efficiency_now": view.efficiency,
            },
            schema={
                "adset_id": pl.Utf8,
                "campaign_id": pl.Utf8,
                "pool": pl.Utf8,
                "scale": pl.Float64,
                "elasticity": pl.Float64,
                "aov": pl.Float64,
                "efficiency_now": pl.Float64,
            },
        )

    def now_view(self) -> NowView:
        """True curves, deliverability and each ad set's effective daily budget at ``now``."""
        hour = self._now_hour
        day = hour // HOURS_PER_DAY
        self._ensure_days(day + 1)
        efficiency = self._days[day].efficiency * self._learning_factor(hour, 1)[:, 0]
        cur = self._current
        spent = self._spent_before(hour)
        remaining = np.maximum(cur.adset_budget - spent, 0)
        deliverable = (
            cur.adset_active
            & cur.campaign_active[self._adset_campaign]
            & (self._start_day <= day)
            & ~(self._lifetime & ((day > self._end_day) | (remaining <= 0)))
        )
        rate = np.where(deliverable & ~self._cbo_member, cur.adset_budget, 0).astype(np.int64)
        days_left = np.maximum(self._end_day - day + 1, 1)
        rate[self._lifetime] = np.where(deliverable, np.rint(remaining / days_left), 0).astype(
            np.int64
        )[self._lifetime]
        weight = self._scale * self._days[day].efficiency * deliverable
        for ci in np.flatnonzero(self._cbo & cur.campaign_active):
            members = np.flatnonzero((self._adset_campaign == ci) & deliverable)
            if members.size:
                rate[members] = largest_remainder_split(
                    int(cur.campaign_budget[ci]), weight[members]
                )
        return NowView(
            adset_ids=list(self._adset_ids),
            scale=self._scale.copy(),
            elasticity=self._elasticity.copy(),
            aov=self._aov.copy(),
            efficiency=efficiency,
            deliverable=deliverable,
            daily_rate=rate,
            currency=self.currency,
        )

    # ---- changes ---------------------------------------------------------------------------

    def apply_budget_change(
        self,
        entity_id: str,
        *,
        daily_budget: int | None = None,
        lifetime_budget: int | None = None,
    ) -> None:
        """Set an entity's budget (minor units) from ``now`` on.

        A change above 20 % of the previous budget puts the affected ad sets back into the
        learning phase (efficiency × 0.75, fading over 5 days).
        """
        if (daily_budget is None) == (lifetime_budget is None):
            raise ValueError(
                f"give exactly one of daily_budget or lifetime_budget for entity {entity_id!r}"
            )
        field = "daily_budget" if daily_budget is not None else "lifetime_budget"
        value = daily_budget if daily_budget is not None else lifetime_budget
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(
                f"{field} for entity {entity_id!r} must be an integer number of minor units, "
                f"got {value!r}"
            )
        if value < 0:
            raise ValueError(f"{field} for entity {entity_id!r} must not be negative, got {value}")
        if entity_id in self._adset_index:
            i = self._adset_index[entity_id]
            if self._cbo_member[i]:
                camp = self._campaign_ids[self._adset_campaign[i]]
                raise ValueError(
                    f"ad set {entity_id!r} belongs to CBO campaign {camp!r}: change the "
                    "campaign's daily_budget instead"
                )
            kind = "lifetime_budget" if self._lifetime[i] else "daily_budget"
            if field != kind:
                raise ValueError(
                    f"ad set {entity_id!r} has a {kind.split('_')[0]} budget, not a "
                    f"{field.split('_')[0]} budget ({field}={value} rejected)"
                )
            if kind == "lifetime_budget":
                spent = int(self._spent_before(self._now_hour)[i])
                if value < spent:
                    raise ValueError(
                        f"lifetime_budget {value} for ad set {entity_id!r} is below the "
                        f"{spent} already spent"
                    )
        elif entity_id in self._campaign_index:
            ci = self._campaign_index[entity_id]
            if not self._cbo[ci]:
                raise ValueError(
                    f"campaign {entity_id!r} has no budget of its own (its ad sets hold the "
                    f"budgets); {field}={value} rejected"
                )
            if field != "daily_budget":
                raise ValueError(
                    f"campaign {entity_id!r} has a daily budget, not a lifetime budget "
                    f"(lifetime_budget={value} rejected)"
                )
        else:
            raise ValueError(f"unknown entity id {entity_id!r} in account {self.account_id}")
        self._record(_Change(self._now_hour, entity_id, field, int(value)))

    def set_status(self, entity_id: str, status: str) -> None:
        """Set a campaign's or ad set's status ("ACTIVE" | "PAUSED") from ``now`` on."""
        if status not in ("ACTIVE", "PAUSED"):
            raise ValueError(f"status must be 'ACTIVE' or 'PAUSED', got {status!r}")
        if entity_id not in self._adset_index and entity_id not in self._campaign_index:
            raise ValueError(f"unknown entity id {entity_id!r} in account {self.account_id}")
        self._record(_Change(self._now_hour, entity_id, "status", status))

    def state(self) -> dict:
        """The clock and every applied change, JSON-serialisable; restore with the constructor."""
        return {
            "version": 1,
            "seed": self.scenario.seed,
            "start": self.scenario.start.isoformat(),
            "now": self.now.isoformat(),
            "changes": [
                {
                    "at": (self._start_dt + c.hour * _HOUR).isoformat(),
                    "entity_id": c.entity_id,
                    "field": c.field,
                    "value": c.value,
                }
                for c in self._changes
            ],
        }

    # ---- internals -------------------------------------------------------------------------

    def _restore(self, state: dict) -> None:
        if state.get("seed") != self.scenario.seed or state.get("start") != (
            self.scenario.start.isoformat()
        ):
            raise ValueError(
                f"state is for seed {state.get('seed')!r} starting {state.get('start')!r}, not "
                f"this scenario (seed {self.scenario.seed}, start {self.scenario.start})"
            )
        for change in state.get("changes", []):
            hour = self._hour_of(datetime.fromisoformat(change["at"]), "change time")
            if hour < self._now_hour:
                raise ValueError(f"state change at {change['at']} is out of order")
            self._now_hour = hour
            if change["field"] == "status":
                self.set_status(change["entity_id"], change["value"])
            else:
                self.apply_budget_change(change["entity_id"], **{change["field"]: change["value"]})
        now = self._hour_of(datetime.fromisoformat(state["now"]), "now")
        if now < self._now_hour:
            raise ValueError(f"state clock {state['now']} is before its last change")
        self._now_hour = now

    def _hour_of(self, moment: datetime, what: str) -> int:
        hours = (moment - self._start_dt) / _HOUR
        if hours != int(hours) or hours < self._first_hour:
            raise ValueError(f"state {what} {moment.isoformat()} is not a whole hour on the clock")
        return int(hours)

    def _as_of_hour(self, as_of: datetime | None) -> float:
        if as_of is None:
            return float(self._now_hour)
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        if as_of > self.now:
            raise ValueError(f"as_of {as_of.isoformat()} is after the account clock {self.now}")
        return (as_of - self._start_dt) / _HOUR

    def _record(self, change: _Change) -> None:
        cur = self._current
        if change.field != "status":
            if change.entity_id in self._adset_index:
                idx = np.array([self._adset_index[change.entity_id]])
                old = int(cur.adset_budget[idx[0]])
            else:
                ci = self._campaign_index[change.entity_id]
                idx = np.flatnonzero(self._adset_campaign == ci)
                old = int(cur.campaign_budget[ci])
            new = int(change.value)
            relative = abs(new - old) / old if old else (math.inf if new else 0.0)
            if relative > LEARNING_THRESHOLD:
                self._learning.append((change.hour, idx))
        self._apply(cur, change)
        self._changes.append(change)
        day = change.hour // HOURS_PER_DAY
        if len(self._days) > day:
            del self._days[day:]
            self._sim_settings = None

    def _apply(self, settings: _Settings, change: _Change) -> None:
        if change.entity_id in self._adset_index:
            i = self._adset_index[change.entity_id]
            if change.field == "status":
                settings.adset_active[i] = change.value == "ACTIVE"
            else:
                settings.adset_budget[i] = change.value
        else:
            ci = self._campaign_index[change.entity_id]
            if change.field == "status":
                settings.campaign_active[ci] = change.value == "ACTIVE"
            else:
                settings.campaign_budget[ci] = change.value

    def _simulated_days(self, lo: int, hi: int) -> list[Day]:
        """Simulated days with indices ``lo``..``hi - 1`` (simulating them if needed)."""
        self._ensure_days(hi)
        return self._days[lo:hi]

    def _spent_before(self, hour: int) -> np.ndarray:
        """Minor units each ad set spent in the hours before ``hour``."""
        day, offset = divmod(hour, HOURS_PER_DAY)
        self._ensure_days(day + (offset > 0))
        spent = (
            self._days[day - 1].spent_total if day > 0 else np.zeros(len(self._adsets), np.int64)
        )
        if offset:
            spent = spent + self._days[day].spend[:, :offset].sum(axis=1)
        return spent

    def _learning_factor(self, hour0: int, n_hours: int) -> np.ndarray:
        factor = np.ones((len(self._adsets), n_hours))
        hours = hour0 + np.arange(n_hours)
        for at, idx in self._learning:
            if at >= hour0 + n_hours or at + LEARNING_HOURS <= hour0:
                continue
            age = hours - at
            fade = np.clip(1.0 - age / LEARNING_HOURS, 0.0, 1.0)
            step = np.where(age >= 0, 1.0 - LEARNING_PENALTY * fade, 1.0)
            factor[idx] = np.minimum(factor[idx], step)
        return factor

    def _shift_level(self, day: int) -> np.ndarray:
        level = np.ones(len(self._adsets))
        for start, i, efficiency in self._shifts:
            if start > day:
                break
            level[i] = efficiency
        return level

    def _ensure_days(self, n_days: int) -> None:
        if len(self._days) >= n_days:
            return
        if self._sim_settings is None:
            first = len(self._days) * HOURS_PER_DAY
            settings = self._initial.copy()
            k = 0
            while k < len(self._changes) and self._changes[k].hour < first:
                self._apply(settings, self._changes[k])
                k += 1
            self._sim_settings, self._sim_next_change = settings, k
        while len(self._days) < n_days:
            self._days.append(simulate_day(self, len(self._days)))
