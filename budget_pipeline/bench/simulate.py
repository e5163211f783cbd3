"""``budget-pipeline simulate`` for ``DAYS`` days on the default scenario, timed in its own
process (issue 8 asks for it as a ratio to one newest-day cycle of the same account).

``python -m budget_pipeline.bench.simulate DAYS`` prints one JSON object: the seconds of the
closed loop (the engine's runs, the static and oracle references), imports excluded.
"""

from __future__ import annotations

import json
import sys
import time


def measure(days: int) -> dict:
    from budget_pipeline import settings
    from budget_pipeline.simulation.environment import prepare_process

    scenario, pools = settings.scenario_path(), settings.pools_path()
    prepare_process(scenario, days)
    from budget_pipeline.simulation.evaluate import simulate

    started = time.perf_counter()
    sim = simulate(scenario, pools, days, "engine", seeds=1)
    return {"days": days, "seconds": time.perf_counter() - started, "uplift": sim.uplift}


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(measure(int(sys.argv[1]))))
