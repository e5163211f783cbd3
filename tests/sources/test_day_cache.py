"""Accounts opened by the pipeline's steps share simulated days (issue 11: ad_entities and
raw_insights each re-simulated the whole history), and sharing never changes what they report."""

from __future__ import annotations

from datetime import date

import pytest

from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.simulated import SimulatedAccount, day_cache, load_scenario
from budget_pipeline.sources.simulated import account as account_module

HISTORY = (date(2026, 9, 1), date(2026, 11, 3))
RAISED = "120210000005001"  # a daily-budget ad set


@pytest.fixture(autouse=True)
def fresh():
    day_cache.forget()
    yield
    day_cache.forget()


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = account_module.simulate_day

    def counting(account, d):
        calls.append(d)
        return real(account, d)

    monkeypatch.setattr(account_module, "simulate_day", counting)
    return calls


def _steps(scenario, plan: list[tuple[str, int]], *, share: bool) -> SimulatedAccount:
    """An account driven like the pipeline drives it: each step reopens it from the state."""
    state = None
    for action, value in plan:
        account = SimulatedAccount(scenario, state, share_days=share)
        if action == "advance":
            account.advance(value)
        else:
            account.apply_budget_change(RAISED, daily_budget=value)
        account.entities()  # ad_entities: lifetime spend needs every day so far
        state = account.state()
    return SimulatedAccount(scenario, state, share_days=share)


def test_the_second_step_reuses_the_first_steps_days(counted):
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    SimulatedAccount(scenario, share_days=True).entities()
    assert counted == list(range(60))
    counted.clear()
    again = SimulatedAccount(scenario, share_days=True)
    frame = again.hourly_insights(date(2026, 10, 28), date(2026, 10, 30))
    assert counted == []  # raw_insights: no day simulated again
    alone = SimulatedAccount(scenario).hourly_insights(date(2026, 10, 28), date(2026, 10, 30))
    assert frame.equals(alone)


def test_after_a_change_only_the_days_from_the_change_on_are_simulated_again(counted):
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    plan = [("advance", 50), ("change", 20_000), ("advance", 30), ("change", 9_000)]
    shared = _steps(scenario, plan, share=True)
    # the first change lands on day 62 (50 h past the 60-day history), the second on day 63:
    # each day is simulated once, and again only from the day a change lands on
    assert counted.count(0) == 1 and counted.count(61) == 1
    assert counted.count(62) == 2 and counted.count(63) == 2
    counted.clear()
    day_cache.forget()
    alone = _steps(scenario, plan, share=False)
    for account in (shared, alone):
        account.advance(24)
    assert shared.state() == alone.state()
    assert shared.hourly_insights(*HISTORY).equals(alone.hourly_insights(*HISTORY))
    assert shared.entities().equals(alone.entities())


def test_accounts_that_diverge_never_see_each_others_days():
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    a = SimulatedAccount(scenario, share_days=True)
    b = SimulatedAccount(scenario, share_days=True)
    for account, budget in ((a, 30_000), (b, 5_000)):
        account.advance(10)
        account.apply_budget_change(RAISED, daily_budget=budget)
        account.advance(40)
        account.hourly_insights(*HISTORY)  # each keeps its days in turn
    day_cache.forget()
    for account, budget in ((a, 30_000), (b, 5_000)):
        alone = SimulatedAccount(scenario)
        alone.advance(10)
        alone.apply_budget_change(RAISED, daily_budget=budget)
        alone.advance(40)
        assert account.hourly_insights(*HISTORY).equals(alone.hourly_insights(*HISTORY))


def test_other_noise_or_another_scenario_object_shares_nothing(counted):
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    SimulatedAccount(scenario, share_days=True).entities()
    counted.clear()
    SimulatedAccount(scenario, noise="none", share_days=True).entities()
    assert len(counted) == 60
    counted.clear()
    SimulatedAccount(scenario.model_copy(update={"seed": 8}), share_days=True).entities()
    assert len(counted) == 60
