"""Review 10, finding 3 (low): ``guard_breaches`` counts pausing an ad set under a CBO campaign
as money parked, though the campaign's budget keeps spending on its other ad sets.

Scenario: bundled ``cbo_lifetime``, default pools file, 7 days, noise off. One change at 00:00
of the first day: ad set 120240692619552 (one of the three ad sets of the CBO campaign
"PR | broad", whose budget holder is the campaign) set to PAUSED.

Expected: no rule is broken: the campaign's daily budget is redistributed by CBO over its two
live ad sets, so the account spends what it did (11,686.54 vs 11,686.47 static); nothing is
parked (the value changes, 29,139.96 vs 30,312.46, which is the decision's quality, not a
breach). A policy that pauses a weak ad set inside a CBO campaign (Meta's own rules do) should
not be charged a guard breach in ``bench decisions``.

Observed (8540126, rules.py:45-48): ``schedule_violations`` returns
["2026-05-26: 120240692619552 status is not a pool's budget holder's"], with the comment that
such a pause "stops its holders' spending behind the pools' backs: money parked", which the
simulator's own spend contradicts.

Fix (suggestion): for a status change of a non-holder, charge a breach only when it stops a
holder's spending (a non-CBO campaign, or the last live ad set of a CBO campaign), e.g. by
mapping the entity to the holders it funds and checking whether any of them is left without
a live ad set.
"""

from __future__ import annotations

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.sources.simulated import load_scenario
from budget_pipeline.sources.simulated.library import scenario_path
from budget_pipeline.sources.simulated.replay import replay
from budget_pipeline.sources.simulated.rules import schedule_violations


def test_pausing_one_ad_set_of_a_cbo_campaign_parks_no_money_and_is_no_breach():
    pools = load_pools(DEFAULT_POOLS_PATH)
    scenario = load_scenario(scenario_path("cbo_lifetime"))
    campaign = next(c for c in scenario.campaigns if c.name == "PR | broad")
    assert campaign.is_cbo and len(campaign.adsets) == 3
    adset = campaign.adsets[0].id
    at = f"{scenario.end.isoformat()}T00:00:00"
    change = [{"at": at, "entity_id": adset, "field": "status", "value": "PAUSED"}]
    static = replay(scenario, [], 7, noise="none")
    paused = replay(scenario, change, 7, noise="none")
    assert abs(paused.spend - static.spend) < 1.0  # CBO spends the campaign budget elsewhere
    assert schedule_violations(scenario, pools, change) == []
