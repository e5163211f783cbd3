"""The embedded default source: a simulated Meta ad account with known response curves."""

from budget_pipeline.sources.simulated.account import NowView, SimulatedAccount, attributed_share
from budget_pipeline.sources.simulated.oracle import (
    current_allocation,
    expected_daily_value,
    oracle_allocation,
)
from budget_pipeline.sources.simulated.scenario import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    ScenarioAdSet,
    ScenarioCampaign,
    load_scenario,
)

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "NowView",
    "Scenario",
    "ScenarioAdSet",
    "ScenarioCampaign",
    "SimulatedAccount",
    "attributed_share",
    "current_allocation",
    "expected_daily_value",
    "load_scenario",
    "oracle_allocation",
]
