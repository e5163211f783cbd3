"""The decision steps against their floor, in their own process, on a warehouse the pipeline
filled (:mod:`.pipeline`).

- **one-pass floor**: one DuckDB GROUP BY over every hourly row (sums per ad set): no
  decision can read the history faster than one pass over it;
- **decision steps**: what the decision assets compute from the warehouse, the engine's
  functions called directly (scores at the newest evaluation point, triggers, the plan of every
  pool, the nine guards), without Dagster; the scores read the baselines ``entity_baselines``
  stored at that point when they are current, as ``composite_scores`` does (the check of its
  record included), else compute them;
- **naive pandas**: :mod:`.naive`, the same decisions as a user would write them.

``python -m budget_pipeline.bench.decisions FOLDER`` (``FOLDER/decided.duckdb``, the warehouse
as the newest-day cycle left it, else ``FOLDER/warehouse.duckdb``) prints one JSON object (best of
``REPEATS`` for the floor and the steps; the naive reference runs once).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPEATS = 3  # best of three, as issue 11 measured its table (min/median of 3)

FLOOR_SQL = """
SELECT adset_id, sum(spend), sum(impressions), sum(reach), sum(clicks),
       sum(conversions_est), sum(purchase_value_est), max(ts)
FROM insights GROUP BY adset_id
"""


def _best(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def decision_steps(con, config, stored: list[bool] | None = None) -> dict[str, float]:
    """Seconds per step of one decision cycle at the newest evaluation point (``stored`` gets
    whether the scores read the stored baselines)."""
    from budget_pipeline import db
    from budget_pipeline.contracts import ACTIONS, AD_ENTITIES, LAST_CHANGES, conform
    from budget_pipeline.defs.decisions.assets import CURVE_DAYS, _score_inputs, min_budgets
    from budget_pipeline.defs.evaluation_point import evaluation_point
    from budget_pipeline.engine.cycle import cycle_as_of
    from budget_pipeline.engine.guards import plan_violations
    from budget_pipeline.engine.policy import plan_with_policies
    from budget_pipeline.engine.response_curves import daily_performance
    from budget_pipeline.engine.scoring import score_entities
    from budget_pipeline.engine.triggers import evaluate_triggers

    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[step] = now - started
        started = now

    # the newest evaluation point, as composite_scores and rebalance_plan decide at it
    as_of = evaluation_point(cycle_as_of(con), config.settings.interval_hours)
    entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
    # as composite_scores reads them (the stored baselines where they are current)
    windows, baselines, reused = _score_inputs(con, [as_of], config, entities)
    if stored is not None:
        stored.append(reused)
    scores = score_entities(windows, baselines, entities, config)
    lap("scores")
    state = db.read(con, "select_trigger_states").clear()  # a first evaluation at as_of
    _, actions = evaluate_triggers(scores, windows, state, config)
    lap("triggers")
    last_changes = conform(
        db.read(con, "select_last_changes", {"as_of": as_of, "plan_id": None}), LAST_CHANGES
    )
    mins = min_budgets(con, config, entities)
    plan = plan_with_policies(
        entities,
        scores,
        conform(actions, ACTIONS),
        config,
        as_of=as_of,
        daily=daily_performance(con, as_of, CURVE_DAYS),
        last_changes=last_changes,
        min_budgets=mins,
    )
    lap("plan")
    plan_violations(plan, config, last_changes=last_changes, as_of=as_of, min_budgets=mins)
    lap("guards")
    seconds["total"] = sum(seconds.values())
    return seconds


def measure(folder: Path, naive: bool = True) -> dict:
    import duckdb

    from budget_pipeline.bench import naive as naive_ref
    from budget_pipeline.bench.pipeline import DECIDED_COPY
    from budget_pipeline.config.pools import load_pools

    config = load_pools(folder / "pools.yaml")
    # the warehouse as the newest-day cycle left it (bench.pipeline copies it), else the one
    # given
    decided = folder / DECIDED_COPY
    path = decided if decided.exists() else folder / "warehouse.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    try:
        floor, _ = _best(lambda: con.execute(FLOOR_SQL).fetchall())
        stored: list[bool] = []
        runs = [decision_steps(con, config, stored) for _ in range(REPEATS)]
        steps = min(runs, key=lambda r: r["total"])
        out = {"floor": floor, "steps": steps, "baselines_stored": all(stored)}
        if naive:
            started = time.perf_counter()
            frame = naive_ref.load(con)
            out["naive_load"] = time.perf_counter() - started
            started = time.perf_counter()
            naive_ref.decide(frame, naive_ref.entities(con), config)
            out["naive"] = time.perf_counter() - started
    finally:
        con.close()
    return out


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(measure(Path(sys.argv[1]), naive="--no-naive" not in sys.argv)))
