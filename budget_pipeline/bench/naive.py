"""The naive reference: the decision cycle as a user would first write it in pandas.

Load the hourly table into a DataFrame, loop over the budget holders with ``groupby``, and per
holder filter its rows for the spend-scaled lookback window, its halves, the 30-day baseline
before it and the 56 days of its response curve; score it against its own baseline with its
pool's weights; fire the score thresholds; then per pool move the capped step from the holders
whose next euro earns least to those whose next euro earns most, conserving the pool's money.

It does less than the engine (no credibility shrinkage, partial pooling, trigger persistence,
cross-pool or cross-tier moves, nor guards), so the engine's speed-up over it is a lower bound.
It exists only to be timed (``budget-pipeline bench``); pandas is a bench-only dependency.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

BASELINE_DAYS, CURVE_DAYS, HALF_LIFE_DAYS, ELASTICITY, CAP = 30, 56, 10.0, 0.6, 0.15


def load(con):
    """Every hourly row as a pandas DataFrame (as a user would start)."""
    return con.execute("SELECT * FROM insights").df()


def entities(con):
    return con.execute("SELECT * FROM ad_entities").df()


def _component(current: float, baseline: float) -> float:
    if not baseline or not current or np.isnan(current) or np.isnan(baseline):
        return 0.5
    return 1.0 / (1.0 + (current / baseline) ** -2)


def _holder_row(g, as_of, weights):
    last7 = g[g["ts"] >= as_of - timedelta(days=7)]
    daily_spend = last7["spend"].sum() / 7
    lookback = 48 if daily_spend >= 2000 else (96 if daily_spend <= 200 else 72)
    start = as_of - timedelta(hours=lookback)
    window = g[g["ts"] >= start]
    base = g[(g["ts"] >= start - timedelta(days=BASELINE_DAYS)) & (g["ts"] < start)]
    mid = as_of - timedelta(hours=lookback / 2)
    early, late = window[window["ts"] < mid], window[window["ts"] >= mid]
    spend, value = window["spend"].sum(), window["purchase_value_est"].sum()
    conv, imps = window["conversions_est"].sum(), window["impressions"].sum()
    clicks = window["clicks"].sum()
    b_spend, b_value = base["spend"].sum(), base["purchase_value_est"].sum()
    b_conv, b_imps, b_clicks = (
        base["conversions_est"].sum(),
        base["impressions"].sum(),
        base["clicks"].sum(),
    )
    roas = value / spend if spend else np.nan
    b_roas = b_value / b_spend if b_spend else np.nan
    rate = conv / spend if spend else np.nan
    b_rate = b_conv / b_spend if b_spend else np.nan
    ctr = clicks / imps if imps else np.nan
    b_ctr = b_clicks / b_imps if b_imps else np.nan
    early_rate = (
        early["conversions_est"].sum() / early["spend"].sum() if early["spend"].sum() else np.nan
    )
    late_rate = (
        late["conversions_est"].sum() / late["spend"].sum() if late["spend"].sum() else np.nan
    )
    freq = window["impressions"].sum() / window["reach"].sum() if window["reach"].sum() else np.nan
    s_freq = 0.5 if np.isnan(freq) or freq <= 3.0 else 0.5 * (3.0 / freq) ** 2
    score = (
        weights["roas"] * _component(roas, b_roas)
        + weights["cpa"] * _component(rate, b_rate)
        + weights["frequency"] * s_freq
        + weights["engagement"] * _component(ctr, b_ctr)
    ) * 0.9 + 0.1 * _component(late_rate, early_rate)
    daily = (
        g[g["ts"] >= as_of - timedelta(days=CURVE_DAYS)]
        .groupby("date")[["spend", "purchase_value_est"]]
        .sum()
        .reset_index()
    )
    age = np.array([(as_of - d.to_pydatetime()).days for d in daily["date"]], dtype=float)
    w = 0.5 ** (age / HALF_LIFE_DAYS)
    denominator = (w * daily["spend"] ** ELASTICITY).sum()
    level = (w * daily["purchase_value_est"]).sum() / denominator if denominator else np.nan
    return {"score": score, "level": level, "enough": b_spend >= 300 and spend > 0}


def decide(df, ents, config):
    """The plan (pandas) of every pool: entity_id, pool, old_budget, new_budget."""
    import pandas as pd

    as_of = (df["ts"].max() + timedelta(hours=1)).to_pydatetime()
    ents = ents[ents["pool"].notna()]
    cbo = set(
        ents[(ents["entity_type"] == "campaign") & (ents["budget_type"] == "daily")]["entity_id"]
    )
    df = df.copy()
    df["holder"] = [
        c if c in cbo else a for a, c in zip(df["adset_id"], df["campaign_id"], strict=True)
    ]
    pool_of = dict(zip(ents["entity_id"], ents["pool"], strict=True))
    weights = {p.name: p.weights.model_dump() for p in config.pools}
    thresholds = {p.name: p.thresholds for p in config.pools}
    rows = []
    for holder, g in df.groupby("holder"):
        pool = pool_of.get(holder)
        if pool is None:
            continue
        row = _holder_row(g, as_of, weights[pool])
        row |= {"entity_id": holder, "pool": pool}
        rows.append(row)
    scores = pd.DataFrame(rows)
    holders = ents[ents["budget_type"] == "daily"][["entity_id", "pool", "daily_budget"]]
    plan = holders.merge(scores, on=["entity_id", "pool"], how="left")
    plan["enough"] = plan["enough"].fillna(False).astype(bool)
    plan["old_budget"] = plan["daily_budget"].astype("int64")
    plan["marginal"] = ELASTICITY * plan["level"] * (plan["old_budget"] / 100) ** (ELASTICITY - 1)
    plan["action"] = "hold"
    for i, r in plan.iterrows():
        t = thresholds[r["pool"]]
        if r["enough"] and r["score"] > t.increase_above:
            plan.loc[i, "action"] = "increase"
        elif r["enough"] and r["score"] < t.decrease_below:
            plan.loc[i, "action"] = "decrease"
    parts = []
    for _pool, p in plan.groupby("pool"):
        p = p.sort_values("marginal").copy()
        p["new_budget"] = p["old_budget"]
        movable = p[p["enough"]]
        half = len(movable) // 2
        donors, takers = movable.iloc[:half], movable.iloc[half:][::-1]
        freed = 0
        for i, r in donors.iterrows():
            cut = int(r["old_budget"] * CAP)
            p.loc[i, "new_budget"] = r["old_budget"] - cut
            freed += cut
        for i, r in takers.iterrows():
            give = min(int(r["old_budget"] * CAP), freed)
            p.loc[i, "new_budget"] = r["old_budget"] + give
            freed -= give
        if freed and len(donors):  # what no recipient could take goes back
            first = donors.index[0]
            p.loc[first, "new_budget"] += freed
        parts.append(p)
    return pd.concat(parts)[["entity_id", "pool", "action", "old_budget", "new_budget"]]
