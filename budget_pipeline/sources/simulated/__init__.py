"""The embedded default source: a simulated Meta ad account with known response curves."""

from budget_pipeline.sources.simulated.account import NowView, SimulatedAccount, attributed_share
from budget_pipeline.sources.simulated.library import (
    KINDS,
    bundled_scenarios,
    generate_scenario,
    scenario_path,
)
from budget_pipeline.sources.simulated.oracle import (
    current_allocation,
    expected_daily_value,
    oracle_allocation,
)
from budget_pipeline.sources.simulated.oracle_schedule import (
    OracleResult,
    daily_jump_schedule,
    oracle_schedule,
)
from budget_pipeline.sources.simulated.replay import RunValue, replay, run_value, with_seed
from budget_pipeline.sources.simulated.rules import schedule_violations
from budget_pipeline.sources.simulated.scenario import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    ScenarioAdSet,
    ScenarioCampaign,
    load_scenario,
)

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "KINDS",
    "NowView",
    "OracleResult",
    "RunValue",
    "Scenario",
    "ScenarioAdSet",
    "ScenarioCampaign",
    "SimulatedAccount",
    "attributed_share",
    "bundled_scenarios",
    "current_allocation",
    "daily_jump_schedule",
    "expected_daily_value",
    "generate_scenario",
    "load_scenario",
    "oracle_allocation",
    "oracle_schedule",
    "replay",
    "run_value",
    "scenario_path",
    "schedule_violations",
    "with_seed",
]
