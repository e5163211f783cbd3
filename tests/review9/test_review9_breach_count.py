"""Review 9: `guard_breaches` (rules.schedule_violations) does not look at status changes."""

from __future__ import annotations

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.sources.simulated import load_scenario
from budget_pipeline.sources.simulated.library import scenario_path
from budget_pipeline.sources.simulated.replay import replay
from budget_pipeline.sources.simulated.rules import schedule_violations

DAYS = 7


def test_status_changes_that_park_money_or_move_a_locked_holder_are_not_counted():
    """Scenario: bundled ``misallocated``, default pools file, 7 days, noise off.

    (a) One change at 00:00 of the first day: campaign "RT | cart abandoners" (not CBO; its
    three ad sets hold 98 + 52 + 74 EUR a day) set to PAUSED. Its ad sets keep their budgets
    but spend nothing: the account spends 9,757.23 instead of 11,278.19 (−13.5 %) and earns
    26,423.34 instead of 32,081.77 (−17.6 %). Money is parked, exactly issue 9's failure mode 1.
    (b) The ad set 120240486175154 (74.00/day) locked in the pools file is paused and its 74.00
    handed to five prospecting ad sets (+15.00, +15.00, +15.00, +15.00, +14.00, each under the
    15 % cap), so the account total of active budgets is unchanged.

    Expected: both schedules break a rule, so ``guard_breaches`` (which simulate and bench
    decisions report, and the issue's target "0 guard breaches" relies on) counts them.

    Observed: ``schedule_violations`` skips every status change except to mark a holder
    inactive: (a) returns [] (a campaign is not a holder, so its status is ignored) and (b)
    returns [] (a locked holder's pause is never checked against ``movable``).

    Fix: in schedule_violations, check status changes like budget changes: an entity that is not
    a movable holder may not change status, and a campaign/ad-set pause must be reflected in the
    active totals of the holders it stops (or be refused).
    """
    pools = load_pools(DEFAULT_POOLS_PATH)
    scenario = load_scenario(scenario_path("misallocated"))
    at = f"{scenario.end.isoformat()}T00:00:00"
    campaign = scenario.campaigns[0]
    assert campaign.name == "RT | cart abandoners" and not campaign.is_cbo

    parked = [{"at": at, "entity_id": campaign.id, "field": "status", "value": "PAUSED"}]
    static = replay(scenario, [], DAYS, noise="none")
    paused = replay(scenario, parked, DAYS, noise="none")
    assert paused.spend < 0.9 * static.spend  # 9,757.23 vs 11,278.19: money stopped spending
    problems_a = schedule_violations(scenario, pools, parked)

    locked_id = "120240486175154"
    retargeting = pools.pools[0].model_copy(update={"locked": [locked_id]})
    locked = pools.model_copy(update={"pools": [retargeting, *pools.pools[1:]]})
    assert locked.is_locked(locked_id)
    moved = [{"at": at, "entity_id": locked_id, "field": "status", "value": "PAUSED"}] + [
        {"at": at, "entity_id": e, "field": "daily_budget", "value": v}
        for e, v in [
            ("120240593600272", 18_000 + 1_500),
            ("120240084934899", 16_700 + 1_500),
            ("120240385095096", 12_800 + 1_500),
            ("120240569402843", 12_300 + 1_500),
            ("120240332986790", 12_000 + 1_400),
        ]
    ]
    problems_b = schedule_violations(scenario, locked, moved)

    assert problems_a and problems_b, (
        f"parked campaign: {problems_a}; locked holder paused and its money moved: {problems_b}"
    )
