"""The scenario library: bundled decision-quality scenarios and a generator of unseen variants.

Every kind is an account of three pools matching the default pools file unchanged (campaign names
"RT | ", "PR | ", "TS | "; pool totals inside floor..ceiling with room both ways), 60 days of
history (so 30-day baselines exist), and, where the kind is about a change, that change on a day
of the simulated run after the history. ``generate_scenario(kind, seed)`` draws new curves,
budgets, names and ids for held-out evaluation; the bundled file ``scenarios/<kind>.yaml`` is
``generate_scenario(kind, 0)`` rendered with its documentation (:func:`scenario_yaml`).

Curves are drawn as "ROAS at the current budget" and converted to the simulator's scale
(conversions/day at 100/day) so each kind's story is set in money terms.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from budget_pipeline.sources.simulated.scenario import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    load_scenario,
)

SCENARIO_DIR = DEFAULT_SCENARIO_PATH.parent
HISTORY_DAYS = 60
CHANGE_DAY = HISTORY_DAYS + 2  # shifts in the run: from its third day

KIND_DOCS: dict[str, str] = {
    "winner": (
        "A prospecting ad set on a small budget becomes 2.2x better from the third day of the\n"
        "run (day 62). The right move: shift money into it, step by step, from the other\n"
        "prospecting ad sets (before the shift, budgets within each pool are near optimal; as\n"
        "in most kinds, retargeting returns about twice prospecting's ROAS, so money also\n"
        "moves between pools within their bounds)."
    ),
    "collapse": (
        "The largest retargeting ad set collapses to 0.3x its efficiency from the third day of\n"
        "the run (day 62). The right move: cut it step by step and give its money to the other\n"
        "retargeting ad sets (and, within the pool bounds, elsewhere)."
    ),
    "misallocated": (
        "Stationary curves, budgets far from optimal within every pool: the ad sets with the\n"
        "best marginal return hold the smallest budgets. The right move: move money from the\n"
        "big, weak ad sets to the small, strong ones at the full step each day (the oracle\n"
        "gains more than 10 % over 21 days under the 15 %/day step cap)."
    ),
    "near_optimal_noisy": (
        "Budgets already at the optimum: every ad set's marginal return is the same, so no\n"
        "move earns money; day-to-day efficiency drifts strongly (drift 0.18) and conversions\n"
        "are noisy. The right move: none (the oracle gains less than 2 %)."
    ),
    "fatigue": (
        "Three ad sets with small audiences (4,000-9,000 people) and strong fatigue run on big\n"
        "budgets, so their 7-day frequency is high and their efficiency low. The right move:\n"
        "cut them, which lets frequency fall and their efficiency recover, and move the money\n"
        "to ad sets with large audiences."
    ),
    "weekday_seasonality": (
        "A strong weekly rhythm (weekday conversion curve from 0.78 on Monday to 1.32 on\n"
        "Sunday, the same for every ad set) on budgets close to optimal. ROAS swings by two\n"
        "thirds within a week while nothing structural changes. The right move: almost none;\n"
        "a policy that reads weekend highs as winners churns budgets."
    ),
    "cbo_lifetime": (
        "Prospecting runs two CBO campaigns (the campaign holds the budget, split by delivery)\n"
        "and a lifetime-budget sale; retargeting has one CBO campaign. The weaker CBO campaign\n"
        "holds more money than the stronger one. The right move: move campaign budget from the\n"
        "weak to the strong CBO campaign; the lifetime budget is not a daily budget to move."
    ),
    "thin_data": (
        "High order values (180-300) on small budgets: most ad sets make well under one\n"
        "conversion a day, so a week of data says little. True differences are modest. The\n"
        "right move: small, patient moves at most; a policy chasing noisy ROAS loses money."
    ),
}
KINDS = tuple(KIND_DOCS)

_POOLS = [
    {"name": "retargeting", "tier": 1, "floor": 200, "ceiling": 600},
    {"name": "prospecting", "tier": 2, "floor": 500, "ceiling": 2000},
    {"name": "testing", "tier": 3, "floor": 100, "ceiling": 300},
]
_PREFIX = {"retargeting": "RT", "prospecting": "PR", "testing": "TS"}
_CAMPAIGN_NAMES = {
    "retargeting": ["cart abandoners", "site visitors 30d", "engagers IG/FB", "past purchasers"],
    "prospecting": ["broad", "lookalike purchasers", "interests", "Advantage+ shopping"],
    "testing": ["new creative UGC", "offer test", "audience test", "formats"],
}
_ADSET_WORDS = ["alpha", "bravo", "cedar", "delta", "ember", "fjord", "gale", "harbor", "iris"]
# pool → (total daily budget, ROAS at the current budget, cpm, audience range)
_POOL_SHAPE = {
    "retargeting": (380.0, 3.8, 14.0, (60_000, 200_000)),
    "prospecting": (1100.0, 1.9, 9.0, (800_000, 5_000_000)),
    "testing": (180.0, 1.5, 10.0, (300_000, 1_500_000)),
}


def scenario_path(kind: str) -> Path:
    """The bundled file of a kind (``scenarios/<kind>.yaml``)."""
    _check_kind(kind)
    return SCENARIO_DIR / f"{kind}.yaml"


def bundled_scenarios() -> dict[str, Scenario]:
    """Every bundled library scenario, loaded and validated, by kind."""
    return {kind: load_scenario(scenario_path(kind)) for kind in KINDS}


def generate_scenario(kind: str, seed: int) -> Scenario:
    """An unseen variant of ``kind`` (new curves, budgets, names, ids); seed 0 is the bundled one."""
    return Scenario.model_validate(_raw(kind, seed))


def scenario_yaml(kind: str, seed: int) -> str:
    """:func:`generate_scenario` as a documented YAML file (the bundled files are seed 0)."""
    raw = _raw(kind, seed)
    header = "\n".join(f"# {line}" for line in KIND_DOCS[kind].splitlines())
    intro = (
        f"# Library scenario '{kind}' (generate_scenario('{kind}', {seed})): three pools that the\n"
        "# default pools file matches unchanged, 60 days of history; amounts in EUR per day.\n"
        "# Day indices count from `start`; the simulated run begins at day 60.\n#\n"
    )
    body = yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100)
    return intro + header + "\n" + body


def _check_kind(kind: str) -> None:
    if kind not in KIND_DOCS:
        raise ValueError(f"unknown scenario kind {kind!r} (kinds: {', '.join(KINDS)})")


def _raw(kind: str, seed: int) -> dict[str, Any]:
    _check_kind(kind)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([KINDS.index(kind), seed])
    start = date(2026, 2, 2) + timedelta(days=int(rng.integers(0, 120)))
    ids = iter(rng.choice(10**9, size=200, replace=False) + 120_240_000_000_000)
    campaigns = []
    for pool in _POOLS:
        campaigns += _pool_campaigns(kind, pool["name"], rng, ids)
    raw: dict[str, Any] = {
        "seed": int(rng.integers(1, 10_000)),
        "start": start,
        "days": HISTORY_DAYS,
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "account_id": f"act_{int(rng.integers(10**9, 10**10))}",
        "pools": _POOLS,
    }
    if kind == "weekday_seasonality":
        raw["weekday"] = [0.78, 0.84, 0.9, 0.97, 1.08, 1.25, 1.32]
    for camp in campaigns:
        for adset in camp["adsets"]:
            if adset.get("end", 0) is None:  # lifetime budgets run through the simulated run
                adset["end"] = start + timedelta(days=HISTORY_DAYS + 40)
    raw["campaigns"] = campaigns
    return raw


def _pool_campaigns(kind: str, pool: str, rng: np.random.Generator, ids) -> list[dict]:
    total, roas, cpm, (aud_lo, aud_hi) = _POOL_SHAPE[pool]
    n_campaigns = 2 if pool != "prospecting" else 3
    per = 3
    n = n_campaigns * per
    elasticity = rng.uniform(0.55, 0.7, n).round(2)
    aov = rng.uniform(50, 80, n).round(0)
    audience = np.exp(rng.uniform(np.log(aud_lo), np.log(aud_hi), n)).round(-3)
    weights = rng.uniform(0.6, 1.6, n)
    quality = rng.uniform(0.85, 1.15, n)  # ROAS at the current budget, relative to the pool's
    drift = {"retargeting": 0.04, "prospecting": 0.05, "testing": 0.12}[pool]
    fatigue = np.full(n, 0.02)
    if kind == "near_optimal_noisy" or kind == "weekday_seasonality":
        quality = np.ones(n)  # equal marginal return everywhere: set below from elasticity
        audience = audience * 4
        drift = 0.18 if kind == "near_optimal_noisy" else 0.04
    if kind == "misallocated":
        order = np.argsort(weights)  # the smallest budgets are the strongest
        quality = np.empty(n)
        quality[order] = np.linspace(1.9, 0.7, n)
    if kind == "thin_data":  # small budgets near the pools' floors, high order values
        total = {"retargeting": 250.0, "prospecting": 650.0, "testing": 130.0}[pool]
        aov = rng.uniform(180, 300, n).round(0)
        quality = rng.uniform(0.9, 1.1, n)
    if kind == "fatigue" and pool != "testing":
        tired = np.argsort(weights)[-2:] if pool == "retargeting" else np.argsort(weights)[-1:]
        audience[tired] = rng.uniform(4000, 9000, tired.size).round(-2)
        fatigue[tired] = 0.2
        weights[tired] *= 1.6
    budget = (weights / weights.sum() * total).round(0)
    if kind in ("near_optimal_noisy", "weekday_seasonality"):
        # marginal return e × ROAS equal across every ad set of the account (λ = 1.25)
        roas_now = 1.25 / elasticity
    else:
        roas_now = roas * quality
    conversions = roas_now * budget / aov
    scale = (conversions / (budget / 100.0) ** elasticity).round(3)
    shifts: dict[int, list[dict]] = {}
    if kind == "winner" and pool == "prospecting":
        shifts[int(np.argmin(budget))] = [{"day": CHANGE_DAY, "efficiency": 2.2}]
    if kind == "collapse" and pool == "retargeting":
        shifts[int(np.argmax(budget))] = [{"day": CHANGE_DAY, "efficiency": 0.3}]
    adsets = [
        {
            "id": str(next(ids)),
            "name": f"{_ADSET_WORDS[i % len(_ADSET_WORDS)]} {i + 1}",
            "daily_budget": float(budget[i]),
            "response": {"scale": float(scale[i]), "elasticity": float(elasticity[i])},
            "aov": float(aov[i]),
            "audience": int(audience[i]),
            "fatigue": float(fatigue[i]),
            "cpm": cpm,
            "drift": drift,
        }
        | ({"shifts": shifts[i]} if i in shifts else {})
        for i in range(n)
    ]
    names = _CAMPAIGN_NAMES[pool]
    campaigns = [
        {
            "id": str(next(ids)),
            "name": f"{_PREFIX[pool]} | {names[c]}",
            "pool": pool,
            "adsets": adsets[c * per : (c + 1) * per],
        }
        for c in range(n_campaigns)
    ]
    if kind == "cbo_lifetime":
        campaigns = _cbo_and_lifetime(pool, campaigns, rng, ids)
    return campaigns


def _cbo_and_lifetime(pool: str, campaigns: list[dict], rng, ids) -> list[dict]:
    """Turn some campaigns into CBO (the campaign holds the sum of its ad sets' budgets) and add
    a lifetime-budget sale to prospecting; the weaker CBO campaign gets the bigger budget."""
    if pool == "testing":
        return campaigns
    cbo = campaigns[:2] if pool == "prospecting" else campaigns[:1]
    for k, camp in enumerate(cbo):
        total = sum(a["daily_budget"] for a in camp["adsets"])
        strength = 1.5 if k == 0 else 0.65  # the first is strong
        for a in camp["adsets"]:
            a["response"]["scale"] = round(a["response"]["scale"] * strength, 3)
            del a["daily_budget"]
        camp["daily_budget"] = total
    if pool == "prospecting":  # the weak CBO campaign holds more money
        first, second = cbo[0]["daily_budget"], cbo[1]["daily_budget"]
        low, high = sorted((first, second))
        cbo[0]["daily_budget"], cbo[1]["daily_budget"] = low * 0.8, high + low * 0.2
        sale = {
            "id": str(next(ids)),
            "name": "sale broad",
            "lifetime_budget": 6000.0,
            "end": None,  # set by the caller's start; filled below
            "response": {"scale": 2.4, "elasticity": 0.65},
            "aov": 60.0,
            "audience": 3_000_000,
            "cpm": 9.0,
            "drift": 0.05,
        }
        campaigns.append(
            {
                "id": str(next(ids)),
                "name": "PR | seasonal sale",
                "pool": pool,
                "adsets": [sale],
            }
        )
    return campaigns
