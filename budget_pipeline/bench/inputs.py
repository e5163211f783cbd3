"""What the speed benchmark runs on: the default account copied N times, and a synthetic
planning input of any size (many ad sets in many pools) for the planner alone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from budget_pipeline import contracts
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, PoolsConfig
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

# The default scenario has this many ad sets; a size of the curve is a whole number of copies.
DEFAULT_ADSETS = 40
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def copies_for(adsets: int) -> int:
    """Copies of the default account that give about ``adsets`` ad sets (at least one)."""
    return max(1, round(adsets / DEFAULT_ADSETS))


def scaled_inputs(copies: int, folder: Path) -> tuple[Path, Path]:
    """The default scenario with every campaign copied ``copies`` times (new ids), and the
    default pools with floors and ceilings scaled alike."""
    raw = yaml.load(DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    campaigns = []
    for copy in range(copies):
        for camp in raw["campaigns"]:
            shift = copy * 10**6
            campaigns.append(
                camp
                | {
                    "id": str(int(camp["id"]) + shift),
                    "name": f"{camp['name']} #{copy}",
                    "adsets": [a | {"id": str(int(a["id"]) + shift)} for a in camp["adsets"]],
                }
            )
    raw["campaigns"] = campaigns
    raw["pools"] = [
        p | {"floor": p["floor"] * copies, "ceiling": p["ceiling"] * copies} for p in raw["pools"]
    ]
    pools = yaml.safe_load(DEFAULT_POOLS_PATH.read_text(encoding="utf-8"))
    pools["pools"] = [
        p | {"floor": p["floor"] * copies, "ceiling": p["ceiling"] * copies} for p in pools["pools"]
    ]
    folder.mkdir(parents=True, exist_ok=True)
    scenario_path, pools_path = folder / "scenario.yaml", folder / "pools.yaml"
    scenario_path.write_text(yaml.dump(raw, Dumper=_Dumper, sort_keys=False), encoding="utf-8")
    pools_path.write_text(yaml.safe_dump(pools, sort_keys=False), encoding="utf-8")
    return scenario_path, pools_path


def planning_inputs(adsets: int, pools: int, *, seed: int = 7) -> dict:
    """A synthetic account for the planner alone: ``adsets`` ad sets with their own daily
    budgets in ``pools`` pools over three tiers (one live market), each with a score and a
    proposal, as any policy hands them to the allocator. Floors and ceilings leave 20 % room
    either way, so money crosses pools and tiers."""
    rng = np.random.default_rng(seed)
    pool_of = np.sort(rng.integers(0, pools, adsets))
    pool_of[:pools] = np.arange(pools)  # every pool has a holder
    pool_of.sort()
    budget = rng.integers(2_000, 50_000, adsets).astype(np.int64)  # 20..500 EUR a day
    per_pool = np.bincount(pool_of, weights=budget, minlength=pools) / 100
    names = [f"pool{p:05d}" for p in range(pools)]
    config = PoolsConfig.model_validate(
        {
            "currency": "EUR",
            "pools": [
                {
                    "name": names[p],
                    "tier": 1 + p % 3,
                    "floor": float(np.floor(per_pool[p] * 0.8)),
                    "ceiling": float(np.ceil(per_pool[p] * 1.2)),
                    "members": {"campaign_ids": [f"9{p:09d}"]},
                }
                for p in range(pools)
            ],
        }
    )
    ids = [f"{10**14 + i}" for i in range(adsets)]
    pool_names = pl.Series([names[p] for p in pool_of], dtype=pl.Utf8)
    entities = pl.DataFrame(
        {
            "entity_id": ids,
            "entity_type": "adset",
            "campaign_id": [f"9{p:09d}" for p in pool_of],
            "name": ids,
            "status": "ACTIVE",
            "budget_type": "daily",
            "daily_budget": budget,
            "lifetime_budget": None,
            "budget_remaining": None,
            "end_date": None,
            "currency": "EUR",
            "pool": pool_names,
            "locked": False,
        }
    ).pipe(contracts.conform, contracts.AD_ENTITIES)
    as_of = datetime(2026, 10, 31)
    score = rng.uniform(0.2, 0.8, adsets)
    scores = pl.DataFrame(
        {"entity_id": ids, "as_of": as_of, "status": "scored", "score": score}
    ).with_columns(pl.col("as_of").cast(pl.Datetime("us")))
    # half want more (up to +30 %), half less; the merit is the score
    change = rng.uniform(-0.3, 0.3, adsets)
    proposals = pl.DataFrame(
        {
            "entity_id": ids,
            "target_budget": np.rint(budget * (1 + change)).astype(np.int64),
            "pause": False,
            "merit": score,
            "trigger": "bench",
            "score": score,
            "why": "synthetic",
        }
    )
    return {
        "entities": entities,
        "proposals": proposals,
        "config": config,
        "scores": scores,
        "as_of": as_of,
    }
