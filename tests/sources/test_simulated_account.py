"""The simulated ad account: determinism, contracts, and the behaviour the engine relies on."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import yaml

from budget_pipeline import contracts
from budget_pipeline.sources.simulated import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    SimulatedAccount,
    attributed_share,
    load_scenario,
)

MONDAY = date(2026, 9, 7)


def make_scenario(
    adsets: list[dict],
    *,
    seed: int = 7,
    days: int = 28,
    start: date = MONDAY,
    campaign: dict | None = None,
) -> Scenario:
    """A one-campaign scenario; every ad set defaults to a large, steady, drift-free one."""
    base = {
        "daily_budget": 100,
        "response": {"scale": 100.0, "elasticity": 0.6},
        "aov": 50.0,
        "audience": 5_000_000,
        "drift": 0.0,
    }
    return Scenario.model_validate(
        {
            "seed": seed,
            "start": start,
            "days": days,
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "pools": [{"name": "main", "tier": 1, "floor": 0, "ceiling": 100_000}],
            "campaigns": [
                {
                    "id": "100",
                    "name": "PR | test",
                    "pool": "main",
                    **(campaign or {}),
                    "adsets": [
                        {"id": str(201 + i), **base, **a}
                        | ({"daily_budget": None} if "lifetime_budget" in a or campaign else {})
                        for i, a in enumerate(adsets)
                    ],
                }
            ],
        }
    )


def daily(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("adset_id", "date")
        .agg(pl.col("spend", "impressions", "reach", "clicks", "conversions").sum())
        .sort("adset_id", "date")
    )


def window(frame: pl.DataFrame, adset_id: str, first: int, last: int, start: date) -> dict:
    """Totals of one ad set over day indices first..last inclusive."""
    rows = frame.filter(
        (pl.col("adset_id") == adset_id)
        & pl.col("date").is_between(start + timedelta(first), start + timedelta(last))
    )
    return rows.select(pl.col("spend", "impressions", "reach", "clicks", "conversions").sum()).row(
        0, named=True
    )


@pytest.fixture(scope="module")
def default_scenario() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO_PATH)


@pytest.fixture(scope="module")
def default_history(default_scenario: Scenario) -> pl.DataFrame:
    account = SimulatedAccount(default_scenario)
    return account.hourly_insights(default_scenario.start, default_scenario.end)


# ---- contracts and determinism --------------------------------------------------------------


def test_frames_follow_the_contracts(default_scenario: Scenario, default_history: pl.DataFrame):
    account = SimulatedAccount(default_scenario)
    entities = account.entities()
    assert entities.schema == pl.Schema(contracts.ENTITIES)
    assert default_history.schema == pl.Schema(contracts.INSIGHTS)
    n_adsets = sum(len(c.adsets) for c in default_scenario.campaigns)
    assert entities.filter(pl.col("entity_type") == "adset").height == n_adsets
    assert entities.filter(pl.col("entity_type") == "campaign").height == 13
    assert entities["currency"].unique().to_list() == ["EUR"]
    # sorted by adset_id, date, hour; one row per ad set and hour; no zero-spend rows
    assert default_history.equals(default_history.sort("adset_id", "date", "hour"))
    assert default_history.select(pl.struct("adset_id", "date", "hour").is_unique().all()).item()
    assert default_history["spend"].min() > 0
    assert default_history["date"].min() == default_scenario.start
    assert default_history["date"].max() == default_scenario.end - timedelta(days=1)
    assert set(default_history["hour"].unique().to_list()) == set(range(24))
    assert (default_history["reach"] <= default_history["impressions"]).all()
    assert (default_history["clicks"] <= default_history["impressions"]).all()
    # the clock starts at the end of the history
    assert account.now == datetime(2026, 10, 31, 0, 0)
    assert (account.account_id, account.currency, account.timezone) == (
        "act_1029384756",
        "EUR",
        "Europe/Berlin",
    )


def test_entities_budgets(default_scenario: Scenario):
    entities = SimulatedAccount(default_scenario).entities()
    by_id = {r["entity_id"]: r for r in entities.iter_rows(named=True)}
    assert by_id["120210000001001"]["budget_type"] == "daily"
    assert by_id["120210000001001"]["daily_budget"] == 6000  # 60.00 EUR in cents
    cbo = by_id["120210000000007"]
    assert (cbo["budget_type"], cbo["daily_budget"]) == ("daily", 30000)
    assert by_id["120210000007001"]["budget_type"] is None
    assert by_id["120210000007001"]["daily_budget"] is None
    life = by_id["120210000009001"]
    assert life["budget_type"] == "lifetime"
    assert life["lifetime_budget"] == 300000 and life["daily_budget"] is None
    assert life["end_date"] == date(2026, 11, 15)
    # 60 of 76 days paced: roughly 16/76 of the budget is left
    assert 0.15 * 300000 < life["budget_remaining"] < 0.30 * 300000
    assert {e["status"] for e in by_id.values()} == {"ACTIVE"}  # every default ad set delivers
    assert by_id["120210000000001"]["budget_type"] is None  # ABO campaign: no budget


def test_same_seed_same_frames_other_seed_differs(default_scenario, default_history):
    again = SimulatedAccount(default_scenario).hourly_insights(
        default_scenario.start, default_scenario.end
    )
    assert again.equals(default_history)
    other = SimulatedAccount(default_scenario.model_copy(update={"seed": 8}))
    differs = other.hourly_insights(default_scenario.start, default_scenario.end)
    assert not differs.equals(default_history)
    assert differs.height > 0.9 * default_history.height


def test_any_request_order_gives_the_same_rows(default_scenario, default_history):
    account = SimulatedAccount(default_scenario)
    first = account.hourly_insights(date(2026, 9, 1), date(2026, 9, 10))
    sep5 = account.hourly_insights(date(2026, 9, 5), date(2026, 9, 5))
    fresh = SimulatedAccount(default_scenario).hourly_insights(date(2026, 9, 5), date(2026, 9, 5))
    sliced = default_history.filter(pl.col("date") == date(2026, 9, 5))
    assert sep5.equals(sliced) and fresh.equals(sliced)
    assert first.equals(default_history.filter(pl.col("date") <= date(2026, 9, 10)))
    late = SimulatedAccount(default_scenario).hourly_insights(date(2026, 10, 1), date(2026, 10, 1))
    assert late.equals(default_history.filter(pl.col("date") == date(2026, 10, 1)))


def test_request_errors(default_scenario):
    account = SimulatedAccount(default_scenario)
    with pytest.raises(ValueError, match="2026-08-31"):
        account.hourly_insights(date(2026, 8, 31), date(2026, 9, 2))
    with pytest.raises(ValueError, match="after the account clock"):
        account.hourly_insights(
            date(2026, 10, 1), date(2026, 10, 2), as_of=account.now + timedelta(hours=1)
        )
    # hours after as_of are not reported; future dates give nothing yet
    cut = account.hourly_insights(
        date(2026, 10, 30), date(2026, 11, 5), as_of=datetime(2026, 10, 30, 12, 30)
    )
    assert cut["hour"].max() == 11 and cut["date"].unique().to_list() == [date(2026, 10, 30)]
    assert account.hourly_insights(date(2026, 11, 1), date(2026, 11, 2)).height == 0


# ---- the response model --------------------------------------------------------------------


def test_diminishing_returns():
    sc = make_scenario([{"daily_budget": 100}, {"daily_budget": 200}], days=17)
    frame = SimulatedAccount(sc).hourly_insights(sc.start, sc.end)
    low, high = (window(frame, a, 0, 13, sc.start) for a in ("201", "202"))
    assert 1.75 < high["spend"] / low["spend"] < 2.25
    ratio = high["conversions"] / low["conversions"]
    assert 1.3 < ratio < 1.75  # 2 ** 0.6 = 1.52: more than 1×, less than 2×


def test_weekly_and_intraday_seasonality():
    sc = make_scenario([{}], days=56)
    frame = SimulatedAccount(sc).hourly_insights(sc.start, sc.end)
    weekday = frame.with_columns(weekend=pl.col("date").dt.weekday() >= 6)
    per = weekday.group_by("weekend").agg(
        (pl.col("conversions").sum() / pl.col("spend").sum()).alias("cps")
    )
    cps = dict(per.iter_rows())
    assert cps[True] / cps[False] > 1.07  # weekends convert ~15 % better per unit of spend
    by_hour = frame.group_by("hour").agg(pl.col("spend").sum()).sort("hour")["spend"]
    assert by_hour[20] > 3 * by_hour[3]  # evening peak, quiet night


def test_small_audience_saturates_and_fatigues():
    # The same ad set (same draws) with a small and a huge audience: only fatigue differs.
    small, big = (
        make_scenario([{"daily_budget": 50, "audience": audience, "fatigue": 0.1}], days=31)
        for audience in (8000, 5_000_000)
    )
    frames = [SimulatedAccount(sc).hourly_insights(sc.start, sc.end) for sc in (small, big)]
    # the last 3 days are still partly attributed: measure before them
    early = [window(f, "201", 0, 1, MONDAY) for f in frames]
    late = [window(f, "201", 14, 27, MONDAY) for f in frames]
    first_day = window(frames[0], "201", 0, 0, MONDAY)

    def freq(w):
        return w["impressions"] / w["reach"]

    assert freq(late[0]) > 2.5 * freq(first_day) and freq(late[0]) > 3.0
    assert freq(late[1]) < 1.1
    assert early[0]["spend"] == early[1]["spend"] and late[0]["spend"] == late[1]["spend"]
    assert early[0]["conversions"] == early[1]["conversions"]  # not fatigued yet
    assert late[0]["conversions"] < 0.85 * late[1]["conversions"]  # fatigued: fewer per spend
    ctr = [w["clicks"] / w["impressions"] for w in late]
    assert ctr[0] < 0.85 * ctr[1]
    late_cps = late[0]["conversions"] / late[0]["spend"]
    assert late_cps < 0.9 * early[0]["conversions"] / early[0]["spend"]


def test_structural_shift_from_its_day():
    sc = make_scenario(
        [
            {"shifts": [{"day": 14, "efficiency": 0.5}]},
            {"shifts": [{"day": 14, "efficiency": 1.6}]},
        ],
        days=24,  # days 14..20 fully attributed
    )
    account = SimulatedAccount(sc)
    frame = account.hourly_insights(sc.start, sc.end)
    for adset_id, lo, hi in (("201", 0.4, 0.62), ("202", 1.4, 1.85)):
        before, after = (
            window(frame, adset_id, 7, 13, sc.start),
            window(frame, adset_id, 14, 20, sc.start),
        )
        ratio = (after["conversions"] / after["spend"]) / (before["conversions"] / before["spend"])
        assert lo < ratio < hi, adset_id
    curves = {r["adset_id"]: r for r in account.response_curves().iter_rows(named=True)}
    assert curves["201"]["efficiency_now"] == pytest.approx(0.5, rel=0.01)
    assert curves["202"]["efficiency_now"] == pytest.approx(1.6, rel=0.01)


def _variant(**adset_fields) -> Scenario:
    """The default scenario with some ad sets changed: {adset_id: {field: value}}."""
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    for camp in raw["campaigns"]:
        for adset in camp["adsets"]:
            adset.update(adset_fields.get(adset["id"], {}))
    return Scenario.model_validate(raw)


def test_young_ad_set_has_no_history_before_its_start_and_a_paused_one_none():
    sc = _variant(**{"120210000010003": {"start_day": 55}, "120210000012004": {"status": "PAUSED"}})
    account = SimulatedAccount(sc)
    history = account.hourly_insights(sc.start, sc.end - timedelta(days=1))
    young = history.filter(pl.col("adset_id") == "120210000010003")
    assert young["date"].min() == date(2026, 9, 1) + timedelta(days=55)
    assert history.filter(pl.col("adset_id") == "120210000012004").height == 0
    entities = account.entities().filter(pl.col("entity_id") == "120210000012004")
    assert entities["status"].to_list() == ["PAUSED"]


def test_spend_stays_within_daily_and_weekly_caps():
    sc = make_scenario([{"daily_budget": 20 + 10 * i} for i in range(20)], days=63, seed=3)
    frame = daily(SimulatedAccount(sc).hourly_insights(sc.start, sc.end))
    budget = {str(201 + i): 20 + 10 * i for i in range(20)}
    frame = frame.with_columns(
        budget=pl.col("adset_id").replace_strict(budget, return_dtype=pl.Float64),
        week=(pl.col("date") - pl.lit(date(2026, 9, 6))).dt.total_days() // 7,  # Sunday weeks
    )
    utilisation = frame["spend"] / frame["budget"]
    assert utilisation.max() <= 1.75
    assert utilisation.max() > 1.15  # Meta does overspend on some days
    assert 0.9 < utilisation.mean() < 1.02
    weekly = frame.group_by("adset_id", "week").agg(pl.col("spend").sum(), pl.col("budget").first())
    assert (weekly["spend"] <= 7 * weekly["budget"] + 1e-9).all()


# ---- attribution ---------------------------------------------------------------------------


def test_attribution_share_curve():
    share = attributed_share(np.array([0.0, 24.0, 48.0, 71.99, 72.0, 500.0]))
    assert share[:4] == pytest.approx([0.5, 0.75, 0.88, 0.96], abs=1e-3)
    assert share[4:].tolist() == [1.0, 1.0]


def test_recent_days_restate_then_freeze(default_scenario):
    account = SimulatedAccount(default_scenario)
    yesterday = date(2026, 10, 30)
    start_now = account.now

    def day_totals(as_of: datetime) -> tuple[float, float, float]:
        rows = account.hourly_insights(yesterday, yesterday, as_of=as_of)
        return tuple(rows.select(pl.col("spend", "conversions", "purchase_value").sum()).row(0))

    seen_then = day_totals(start_now)
    account.advance(96)
    seen_later = day_totals(account.now)
    assert seen_later[0] == seen_then[0]  # spend is not restated
    assert seen_then[1] < 0.85 * seen_later[1]  # conversions arrive late ...
    assert seen_then[2] < seen_later[2]  # ... and so does their value
    steps = [day_totals(start_now + timedelta(hours=h))[1] for h in range(0, 97, 6)]
    assert steps == sorted(steps)  # monotone non-decreasing as as_of advances
    assert day_totals(start_now + timedelta(hours=72)) == day_totals(
        start_now + timedelta(hours=96)
    )
    # a day older than 72 h was final already at the start
    old = date(2026, 10, 25)
    assert account.hourly_insights(old, old, as_of=start_now).equals(
        account.hourly_insights(old, old)
    )


# ---- closing the loop: changes ---------------------------------------------------------------


def test_budget_change_takes_effect_from_now(default_scenario):
    adset = "120210000005001"  # 150.00 / day
    changed, twin = SimulatedAccount(default_scenario), SimulatedAccount(default_scenario)
    changed.apply_budget_change(adset, daily_budget=20000)
    for account in (changed, twin):
        account.advance(48)
    after = [
        a.hourly_insights(date(2026, 10, 31), date(2026, 11, 1)).filter(pl.col("adset_id") == adset)
        for a in (changed, twin)
    ]
    assert 2 * 200 * 0.8 < after[0]["spend"].sum() < 2 * 200 * 1.2
    assert 2 * 150 * 0.8 < after[1]["spend"].sum() < 2 * 150 * 1.2
    # the past is not rewritten, and the other ad sets' draws are untouched
    past = [a.hourly_insights(date(2026, 10, 1), date(2026, 10, 30)) for a in (changed, twin)]
    assert past[0].equals(past[1])
    others = [
        a.hourly_insights(date(2026, 10, 31), date(2026, 11, 1)).filter(pl.col("adset_id") != adset)
        for a in (changed, twin)
    ]
    assert others[0].equals(others[1])
    budget = changed.entities().filter(pl.col("entity_id") == adset)["daily_budget"].item()
    assert budget == 20000


def test_learning_penalty_after_large_change_only():
    sc = make_scenario([{"response": {"scale": 400.0, "elasticity": 0.6}}], days=14)
    twin = SimulatedAccount(sc)
    results = {}
    for pct in (30, 10):
        account = SimulatedAccount(sc)
        account.apply_budget_change("201", daily_budget=10000 * (100 + pct) // 100)
        eff = account.response_curves()["efficiency_now"].item()
        results[pct] = {"eff": eff / twin.response_curves()["efficiency_now"].item()}
        account.advance(24)
        results[pct]["account"] = account
    twin.advance(24)
    day = sc.end

    def totals(account):
        return account.hourly_insights(day, day).select(pl.col("spend", "conversions").sum()).row(0)

    base_spend, base_conv = totals(twin)
    for pct, expect in ((30, (0.70, 0.88)), (10, (0.93, 1.07))):
        spend, conv = totals(results[pct]["account"])
        # conversions relative to what the curve alone predicts for the higher spend
        adjusted = (conv / base_conv) / (spend / base_spend) ** 0.6
        assert expect[0] < adjusted < expect[1], (pct, adjusted)
    assert results[30]["eff"] == pytest.approx(0.75)
    assert results[10]["eff"] == pytest.approx(1.0)
    # the penalty fades over 5 days
    account = results[30]["account"]
    twin.advance(96)
    account.advance(96)
    assert account.response_curves()["efficiency_now"].item() == pytest.approx(
        twin.response_curves()["efficiency_now"].item()
    )


def test_pause_and_resume():
    sc = make_scenario([{}, {}], days=7)
    account = SimulatedAccount(sc)
    account.set_status("201", "PAUSED")
    account.advance(24)
    today = sc.end
    rows = account.hourly_insights(today, today)
    assert rows["adset_id"].unique().to_list() == ["202"]
    account.set_status("100", "PAUSED")  # the campaign stops all its ad sets
    account.set_status("201", "ACTIVE")
    account.advance(24)
    assert account.hourly_insights(today + timedelta(1), today + timedelta(1)).height == 0
    account.set_status("100", "ACTIVE")
    account.advance(24)
    resumed = account.hourly_insights(today + timedelta(2), today + timedelta(2))
    assert resumed["adset_id"].unique().sort().to_list() == ["201", "202"]
    statuses = dict(account.entities().select("entity_id", "status").iter_rows())
    assert statuses == {"100": "ACTIVE", "201": "ACTIVE", "202": "ACTIVE"}


def test_lifetime_budget_spends_down():
    end = MONDAY + timedelta(days=9)
    sc = make_scenario([{"lifetime_budget": 1000, "end": end}, {}], days=5)
    account = SimulatedAccount(sc)

    def remaining() -> int:
        ents = account.entities().filter(pl.col("entity_id") == "201")
        assert ents["budget_type"].item() == "lifetime"
        assert ents["end_date"].item() == end
        return ents["budget_remaining"].item()

    first = remaining()
    assert 40000 < first < 60000  # half the days paced: about half the budget left
    account.advance(24)
    second = remaining()
    assert 0 < first - second < 0.4 * first
    account.advance(24 * 7)  # past the end date
    spend = account.hourly_insights(sc.start, end + timedelta(2)).filter(
        pl.col("adset_id") == "201"
    )
    assert spend["date"].max() == end
    assert spend["spend"].sum() <= 1000
    assert 0 <= remaining() < 10000
    with pytest.raises(ValueError, match="below"):
        account.apply_budget_change("201", lifetime_budget=50000)
    account.apply_budget_change("201", lifetime_budget=150000)
    assert remaining() > 50000


def test_cbo_campaign_splits_and_moves_its_budget():
    adsets = [{"response": {"scale": s, "elasticity": 0.6}} for s in (30.0, 20.0, 10.0)]
    sc = make_scenario(adsets, days=7, campaign={"daily_budget": 300})
    account = SimulatedAccount(sc)
    frame = daily(account.hourly_insights(sc.start, sc.end))
    per_adset = dict(frame.group_by("adset_id").agg(pl.col("spend").sum()).iter_rows())
    assert 7 * 300 * 0.85 < sum(per_adset.values()) < 7 * 300 * 1.1
    assert per_adset["201"] > per_adset["202"] > per_adset["203"]
    with pytest.raises(ValueError, match="CBO campaign '100'"):
        account.apply_budget_change("201", daily_budget=5000)
    account.apply_budget_change("100", daily_budget=60000)
    assert np.allclose(account.response_curves()["efficiency_now"].to_numpy(), 0.75)
    account.advance(24)
    day = account.hourly_insights(sc.end, sc.end)["spend"].sum()
    assert 600 * 0.8 < day < 600 * 1.2


def test_change_errors(default_scenario):
    account = SimulatedAccount(default_scenario)
    with pytest.raises(ValueError, match="'999'"):
        account.apply_budget_change("999", daily_budget=100)
    with pytest.raises(ValueError, match="lifetime budget, not a daily"):
        account.apply_budget_change("120210000009001", daily_budget=100)
    with pytest.raises(ValueError, match="daily budget, not a lifetime"):
        account.apply_budget_change("120210000001001", lifetime_budget=100)
    with pytest.raises(ValueError, match="negative, got -5"):
        account.apply_budget_change("120210000001001", daily_budget=-5)
    with pytest.raises(ValueError, match="integer number of minor units"):
        account.apply_budget_change("120210000001001", daily_budget=12.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no budget of its own"):
        account.apply_budget_change("120210000000001", daily_budget=100)
    with pytest.raises(ValueError, match="exactly one"):
        account.apply_budget_change("120210000001001")
    with pytest.raises(ValueError, match="'RUNNING'"):
        account.set_status("120210000001001", "RUNNING")
    with pytest.raises(ValueError, match="'42'"):
        account.set_status("42", "PAUSED")
    with pytest.raises(ValueError):
        account.advance(-1)
    assert account.state()["changes"] == []


# ---- state and horizon ---------------------------------------------------------------------


def test_state_round_trip(default_scenario):
    account = SimulatedAccount(default_scenario)
    account.apply_budget_change("120210000005001", daily_budget=17250)
    account.advance(5)
    account.apply_budget_change("120210000000007", daily_budget=36000)
    account.set_status("120210000011003", "PAUSED")
    account.advance(30)
    account.apply_budget_change("120210000009001", lifetime_budget=320000)
    account.advance(13)
    state = json.loads(json.dumps(account.state()))
    restored = SimulatedAccount(default_scenario, state)
    assert restored.now == account.now == datetime(2026, 11, 2, 0, 0)
    assert restored.state() == state
    assert restored.entities().equals(account.entities())
    window_ = (date(2026, 10, 25), date(2026, 11, 1))
    assert restored.hourly_insights(*window_).equals(account.hourly_insights(*window_))
    assert restored.response_curves().equals(account.response_curves())
    other = default_scenario.model_copy(update={"seed": 99})
    with pytest.raises(ValueError, match="seed"):
        SimulatedAccount(other, state)


def test_horizon_grows_with_the_clock(default_scenario):
    account = SimulatedAccount(default_scenario)
    account.advance(24 * 10 + 6)
    rows = account.hourly_insights(date(2026, 11, 1), date(2026, 11, 30))
    assert rows["date"].max() == date(2026, 11, 10)
    assert rows.filter(pl.col("date") == date(2026, 11, 10))["hour"].max() == 5
    again = SimulatedAccount(default_scenario, account.state())
    assert again.hourly_insights(date(2026, 11, 1), date(2026, 11, 30)).equals(rows)


def test_response_curves(default_scenario):
    curves = SimulatedAccount(default_scenario).response_curves()
    assert curves.columns == [
        "adset_id",
        "campaign_id",
        "pool",
        "scale",
        "elasticity",
        "aov",
        "efficiency_now",
    ]
    by_id = {r["adset_id"]: r for r in curves.iter_rows(named=True)}
    assert 0.35 < by_id["120210000001003"]["efficiency_now"] < 0.65  # halved from day 45
    assert 1.3 < by_id["120210000006003"]["efficiency_now"] < 1.9  # × 1.6 from day 40
    assert by_id["120210000004001"]["efficiency_now"] < 0.9  # fatigued small audience
    assert set(curves["pool"].unique()) == {"retargeting", "prospecting", "testing"}


# ---- speed ---------------------------------------------------------------------------------


def test_default_scenario_simulates_fast(default_scenario):
    started = time.perf_counter()
    account = SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))
    account.hourly_insights(default_scenario.start, default_scenario.end)
    account.entities()
    assert time.perf_counter() - started < 2.0


def test_large_account_simulates_in_seconds():
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    campaigns = []
    for copy in range(10):  # 13 × 10 campaigns, 400 ad sets
        for camp in raw["campaigns"]:
            campaigns.append(
                camp
                | {
                    "id": str(int(camp["id"]) + copy * 10**6),
                    "adsets": [
                        a | {"id": str(int(a["id"]) + copy * 10**6)} for a in camp["adsets"]
                    ],
                }
            )
    sc = Scenario.model_validate(raw | {"campaigns": campaigns, "days": 90})
    started = time.perf_counter()
    rows = SimulatedAccount(sc).hourly_insights(sc.start, sc.end)
    assert time.perf_counter() - started < 10.0
    assert rows["adset_id"].n_unique() == 400
