"""The planner alone at sizes no simulated account reaches: ``allocate`` (proposals → one
guarded plan over every pool) and the nine guards on its plan, on :func:`.inputs.planning_inputs`.

``python -m budget_pipeline.bench.planning ADSETS POOLS`` prints one JSON object (best of
``REPEATS``).
"""

from __future__ import annotations

import json
import sys
import time

REPEATS = 2


def measure(adsets: int, pools: int) -> dict:
    from budget_pipeline.bench.inputs import planning_inputs
    from budget_pipeline.engine.allocator import allocate
    from budget_pipeline.engine.guards import plan_violations

    inp = planning_inputs(adsets, pools)
    best_plan = best_guards = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        plan = allocate(
            inp["entities"], inp["proposals"], inp["config"], as_of=inp["as_of"],
            scores=inp["scores"],
        )  # fmt: skip
        best_plan = min(best_plan, time.perf_counter() - started)
        started = time.perf_counter()
        violations = plan_violations(plan, inp["config"])
        best_guards = min(best_guards, time.perf_counter() - started)
    bad = {k: v.height for k, v in violations.items() if v.height}
    if bad:
        raise RuntimeError(f"the synthetic plan breaks guards: {bad}")
    return {
        "adsets": adsets,
        "pools": pools,
        "plan": best_plan,
        "guards": best_guards,
        "moves": int((plan["delta"] != 0).sum()),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
