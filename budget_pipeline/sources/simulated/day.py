"""One simulated local day of the account: hourly delivery, vectorised over ad sets × 24 hours.

The model is described in :mod:`budget_pipeline.sources.simulated.account`; this module holds the
day step (:func:`simulate_day`) and the fixed-draw Poisson sampler it uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from budget_pipeline.sources.simulated.pacing import pace_day, week_elapsed_days

HOURS_PER_DAY = 24

# Share of a day's delivery in each local hour: low at night, evening peak (sums to 1).
_INTRADAY_SHAPE = np.array(
    [0.35, 0.25, 0.20, 0.18, 0.20, 0.30, 0.50, 0.70, 0.85, 0.95, 1.00, 1.05,
     1.10, 1.05, 1.00, 1.00, 1.05, 1.15, 1.30, 1.50, 1.65, 1.60, 1.30, 0.80]
)  # fmt: skip
INTRADAY = _INTRADAY_SHAPE / _INTRADAY_SHAPE.sum()
# Conversion-rate multiplier by weekday, Monday first: weekends convert 10-15 % better.
WEEKDAY = np.array([0.97, 0.96, 0.97, 0.98, 1.02, 1.12, 1.14])
# Attributed share of an hour's final conversions by hours since it ended; 100 % from 72 h.
ATTRIBUTION_HOURS = (0.0, 24.0, 48.0, 72.0)
ATTRIBUTION_SHARE = (0.50, 0.75, 0.88, 0.96)
ATTRIBUTION_FINAL_HOURS = 72.0

LEARNING_THRESHOLD = 0.20  # a budget change above this (relative) re-enters learning
LEARNING_PENALTY = 0.25  # efficiency × (1 − penalty) right after the change ...
LEARNING_HOURS = 120  # ... fading linearly to nothing over 5 days
BURST_PROBABILITY = 0.04  # days on which delivery overspends (utilisation 1.2-1.7)
# Expected utilisation: 0.95 (symmetric clip) on most days, 1.45 on burst days.
MEAN_UTILISATION = (1 - BURST_PROBABILITY) * 0.95 + BURST_PROBABILITY * 1.45
FATIGUE_FREE_FREQUENCY = 2.0  # fatigue starts above this 7-day frequency
FATIGUE_FLOOR = 0.2
CPM_PER_FREQUENCY = 0.04  # CPM × (1 + 0.04 × (frequency − 1))
CPM_NOISE = 0.08
DRIFT_PERSISTENCE = 0.8  # AR(1) coefficient of the daily log-efficiency drift
VALUE_SIGMA = 0.5  # lognormal sd of one purchase's value around the aov
NORMAL_APPROX_ABOVE = 30.0
# People reached before today still inside the 7-day window: a smooth 6-of-7-days memory
# (steady state 6 days of new reach), instead of a hard window that would oscillate weekly.
RECENT_REACH_KEEP = 6 / 7  # Poisson means above this use the normal approximation


if TYPE_CHECKING:
    from budget_pipeline.sources.simulated.account import SimulatedAccount


def _poisson(u: np.ndarray, z: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(lam) counts by inverting the CDF at fixed uniforms ``u`` (normals ``z`` above 30).

    Using fixed draws (common random numbers) makes a count depend only on its own mean and
    draw, never on how many random numbers other cells consumed.
    """
    lam_f = np.maximum(lam, 0.0).ravel()
    out = np.zeros(lam_f.shape, dtype=np.int64)
    big = lam_f > NORMAL_APPROX_ABOVE
    if big.any():
        lb = lam_f[big]
        out[big] = np.maximum(np.rint(lb + np.sqrt(lb) * z.ravel()[big]), 0).astype(np.int64)
    small = np.flatnonzero(~big & (lam_f > 0))
    if small.size:
        lam_s = lam_f[small]
        u_s = np.minimum(u.ravel()[small], 1.0 - 1e-12)
        p = np.exp(-lam_s)
        cdf = p.copy()
        k = np.zeros(small.size, dtype=np.int64)
        active = np.flatnonzero(u_s > cdf)
        j = 0
        while active.size and j < 400:
            j += 1
            p[active] *= lam_s[active] / j
            cdf[active] += p[active]
            k[active] = j
            active = active[u_s[active] > cdf[active]]
        out[small] = k
    return out.reshape(lam.shape)


def _diff0(cumulative: np.ndarray) -> np.ndarray:
    """Per-hour values from within-day cumulative values (first hour keeps its own)."""
    return np.diff(cumulative, axis=1, prepend=0)


_INT32 = np.iinfo(np.int32)


def _compact(counts: np.ndarray) -> np.ndarray:
    """Whole numbers as int32 when every one fits (exact; half the memory), else unchanged.

    A process keeps every simulated day (``day_cache``): 61 days of 10k ad sets are 1.1 GB of
    hourly arrays in int64/float64. Readers only index, slice and sum them (numpy sums int32
    into int64), so the narrower type changes no number."""
    fits = counts.size and counts.min() >= _INT32.min and counts.max() <= _INT32.max
    return counts.astype(np.int32) if counts.dtype == np.int64 and fits else counts


def _draws(seed: int, d: int, n: int) -> Iterator[np.ndarray]:
    """Day ``d``'s random draws, always in this order (the same seed gives the same draws):
    normals (3, n), uniforms (2, n), hourly uniforms and hourly normals (3, n, 24)."""
    rng = np.random.default_rng([seed, d])
    yield rng.standard_normal((3, n))
    yield rng.random((2, n))
    yield rng.random((3, n, HOURS_PER_DAY))
    yield rng.standard_normal((3, n, HOURS_PER_DAY))


@dataclass
class Day:
    """One simulated local day: hourly (n_adsets, 24) arrays and start/end-of-day state."""

    spend: np.ndarray  # minor units (int32 when they fit: see _compact)
    impressions: np.ndarray
    reach: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray  # final (fully attributed) counts
    value: np.ndarray  # final purchase value, major units
    draw_key: tuple[int, int, int]  # (seed, day, ad sets): attribution_draw is drawn again
    efficiency: np.ndarray  # start of day: shift × fatigue × drift
    drift: np.ndarray  # AR(1) state of the log-efficiency drift
    recent_reach: np.ndarray  # start of day: people reached in the trailing days (7-day window)
    day_spend: np.ndarray  # int64 minor units
    day_impressions: np.ndarray
    day_reach: np.ndarray
    spent_total: np.ndarray  # int64 minor units spent from the start to the end of this day
    week_used: np.ndarray  # days of budget used of this week's allowance at the end of the day

    @property
    def attribution_draw(self) -> np.ndarray:
        """The uniform draw (ad sets × 24) that rounds partial attribution: drawn again from
        the day's seed when read (a few ms), not kept (it was 10 % of a kept day)."""
        draws = _draws(*self.draw_key)
        next(draws), next(draws)  # the draws before it
        return next(draws)[2]


def simulate_day(account: SimulatedAccount, d: int) -> Day:
    """Simulate day index ``d`` from the state at the end of day ``d - 1``."""
    n, H = len(account._adsets), HOURS_PER_DAY
    h0 = d * H
    factor = account._factor
    normal, burst, uniform, hourly_normal = _draws(account.scenario.seed, d, n)
    z_util, z_drift, z_cpm = normal
    u_burst, u_burst_size = burst
    u_conv, u_click, _ = uniform  # the third is Day.attribution_draw, drawn again when read
    z_conv, z_click, z_value = hourly_normal
    noisy = account.noise != "none"  # the world's path: drift, delivery, prices
    lucky = account.noise == "full"  # purchases drawn, not their expectation

    # Budgets and statuses hour by hour, changes taking effect from their hour; a budget
    # change restarts the weekly allowance of the ad sets it funds.
    settings = account._sim_settings
    assert settings is not None
    budget = np.repeat(settings.adset_budget[:, None], H, axis=1)
    adset_on = np.repeat(settings.adset_active[:, None], H, axis=1)
    camp_budget = np.repeat(settings.campaign_budget[:, None], H, axis=1)
    camp_on = np.repeat(settings.campaign_active[:, None], H, axis=1)
    reset = np.zeros((n, H), dtype=bool)
    reset[:, 0] = d == account._start_day
    k = account._sim_next_change
    while k < len(account._changes) and account._changes[k].hour < h0 + H:
        change = account._changes[k]
        offset = change.hour - h0
        account._apply(settings, change)
        budget[:, offset:] = settings.adset_budget[:, None]
        adset_on[:, offset:] = settings.adset_active[:, None]
        camp_budget[:, offset:] = settings.campaign_budget[:, None]
        camp_on[:, offset:] = settings.campaign_active[:, None]
        if change.field != "status":
            if change.entity_id in account._adset_index:
                reset[account._adset_index[change.entity_id], offset] = True
            else:
                funded = account._adset_campaign == account._campaign_index[change.entity_id]
                reset[funded, offset] = True
        k += 1
    account._sim_next_change = k

    # Start-of-day state from the trailing days.
    past = account._days[max(d - 7, 0) : d]
    imps7 = sum((p.day_impressions for p in past), np.zeros(n))
    reach7 = sum((p.day_reach for p in past), np.zeros(n))
    if d:  # people reached in the last days, fading out of the 7-day window smoothly
        prev = account._days[d - 1]
        recent = RECENT_REACH_KEEP * (prev.recent_reach + prev.day_reach)
    else:
        recent = np.zeros(n)
    frequency = np.divide(imps7, reach7, out=np.zeros(n), where=reach7 > 0)
    excess = np.maximum(frequency - FATIGUE_FREE_FREQUENCY, 0.0)
    fatigue = np.maximum(FATIGUE_FLOOR, 1.0 - account._fatigue * excess)
    rho = DRIFT_PERSISTENCE
    if not noisy:
        drift = np.zeros(n)
        efficiency = account._shift_level(d) * fatigue
    else:
        if d == 0:
            drift = account._drift_sd * z_drift
        else:
            previous = account._days[d - 1].drift
            drift = rho * previous + account._drift_sd * math.sqrt(1 - rho**2) * z_drift
        efficiency = account._shift_level(d) * fatigue * np.exp(drift - account._drift_sd**2 / 2)
    spent_before = account._days[d - 1].spent_total if d else np.zeros(n, np.int64)
    weekday = (account.scenario.start + timedelta(days=d)).weekday()
    elapsed = week_elapsed_days(weekday)
    if elapsed == 0 or d == 0:  # a new week, or the first one prorated from the start
        week_used = np.full(n, float(elapsed))
    else:
        week_used = account._days[d - 1].week_used

    # Spend: the daily rate each hour, × utilisation × intraday curve, paced over the week.
    live = adset_on & camp_on[account._adset_campaign] & (d >= account._start_day)[:, None]
    lifetime, cbo = account._lifetime, account._cbo_member
    live &= ~(lifetime & (d > account._end_day))[:, None]
    rate = np.where((~lifetime & ~cbo)[:, None], budget / factor, 0.0)
    if cbo.any():
        weight = (account._scale * efficiency)[:, None] * (live & cbo[:, None])
        total = np.zeros((len(account._campaigns), H))
        np.add.at(total, account._adset_campaign, weight)
        total = total[account._adset_campaign]
        share = np.divide(weight, total, out=np.zeros((n, H)), where=total > 0)
        rate += share * camp_budget[account._adset_campaign] / factor
    remaining = np.maximum(budget - spent_before[:, None], 0) / factor
    if lifetime.any():
        days_left = np.maximum(account._end_day - d + 1, 1)[:, None]
        rate = np.where(lifetime[:, None], remaining / days_left, rate)
    if noisy:
        utilisation = np.clip(0.95 + 0.05 * z_util, 0.85, 1.05)
        burst = u_burst < BURST_PROBABILITY
        utilisation = np.where(burst, 1.2 + 0.5 * u_burst_size, utilisation)
    else:
        utilisation = np.full(n, MEAN_UTILISATION)
    planned = utilisation[:, None] * INTRADAY[None, :] * live
    delivered, week_used = pace_day(planned, reset, week_used, elapsed, ~lifetime)
    cumulative = np.cumsum(delivered * rate, axis=1)
    cumulative = np.where(lifetime[:, None], np.minimum(cumulative, remaining), cumulative)
    cumulative = np.maximum.accumulate(np.maximum(cumulative, 0.0), axis=1)
    cum_minor = np.floor(cumulative * factor + 1e-9).astype(np.int64)
    spend = _diff0(cum_minor)
    spend_major = spend / factor

    # Impressions, reach out of a finite audience, clicks.
    cpm = account._cpm * (1 + CPM_PER_FREQUENCY * np.maximum(frequency - 1, 0))
    if noisy:
        cpm = cpm * np.exp(CPM_NOISE * z_cpm - CPM_NOISE**2 / 2)
    imps_cum = np.floor(cum_minor / factor / cpm[:, None] * 1000).astype(np.int64)
    impressions = _diff0(imps_cum)
    available = np.maximum(account._audience - recent, 0.0)
    reach_cum = np.floor(
        available[:, None] * -np.expm1(-imps_cum / account._audience[:, None])
    ).astype(np.int64)
    reach = np.clip(_diff0(reach_cum), 0, impressions)
    ctr = account._ctr * fatigue
    expected_clicks = impressions * ctr[:, None]
    if noisy:
        clicks = np.minimum(_poisson(u_click, z_click, expected_clicks), impressions)
    else:
        clicks = np.rint(expected_clicks).astype(np.int64)

    # Conversions and value: the response curve at the hour's daily rate.
    daily_rate = spend_major / INTRADAY[None, :]
    mean = (
        account._scale[:, None]
        * (daily_rate / 100.0) ** account._elasticity[:, None]
        * INTRADAY[None, :]
        * account._weekday[weekday]
        * efficiency[:, None]
        * account._learning_factor(h0, H)
    )
    if lucky:
        conversions = _poisson(u_conv, z_conv, mean)
        sigma = VALUE_SIGMA / np.sqrt(np.maximum(conversions, 1))
        noise = np.exp(sigma * z_value - sigma**2 / 2)
        value = np.round(conversions * account._aov[:, None] * noise * factor) / factor
    else:  # the expectation given the day: fractional conversions, value at the aov
        conversions = mean
        value = mean * account._aov[:, None]

    day_spend = spend.sum(axis=1)
    return Day(
        spend=_compact(spend),
        impressions=_compact(impressions),
        reach=_compact(reach),
        clicks=_compact(clicks),
        conversions=_compact(conversions),
        value=value,
        draw_key=(account.scenario.seed, d, n),
        efficiency=efficiency,
        drift=drift,
        recent_reach=recent,
        day_spend=day_spend,
        day_impressions=impressions.sum(axis=1),
        day_reach=reach.sum(axis=1),
        spent_total=spent_before + day_spend,
        week_used=week_used,
    )
