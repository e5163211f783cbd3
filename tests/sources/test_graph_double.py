"""The Graph API double over real loopback HTTP: Meta's shapes, errors and headers, faults,
budget writes that change the simulated account, a JPY account and a CBO campaign."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date

import httpx
import polars as pl
import pytest
from meta_double_helpers import TOKEN, Sleeps, default_account, jpy_account, make_source

from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.graph_double.app import HOURLY_BREAKDOWN, PURCHASE_ALIASES
from budget_pipeline.sources.meta_api import (
    BudgetEditLimitError,
    InvalidParameterError,
)

END = date(2026, 10, 30)
ADSET = "120210000001001"  # "cart 7d", daily budget 60.00 EUR
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def double():
    with serve_double(default_account(), token=TOKEN) as handle:
        yield handle


def _get(double, path: str, **params) -> httpx.Response:
    return httpx.get(f"{double.url}/v25.0/{path}", params=params, headers=AUTH, timeout=5)


def _cbo(entities: pl.DataFrame) -> tuple[str, list[str]]:
    campaign = entities.filter(
        (pl.col("entity_type") == "campaign") & (pl.col("budget_type") == "daily")
    )["entity_id"][0]
    adsets = entities.filter(
        (pl.col("entity_type") == "adset") & (pl.col("campaign_id") == campaign)
    )["entity_id"].to_list()
    return campaign, adsets


# -- Meta's shapes ------------------------------------------------------------------------------


def test_hourly_insights_in_meta_string_shapes(double):
    fields = (
        "campaign_id,adset_id,spend,impressions,reach,frequency,clicks,ctr,actions,action_values"
    )
    rows = _get(
        double,
        "act_1029384756/insights",
        level="adset",
        fields=fields,
        time_range=json.dumps({"since": str(END), "until": str(END)}),
        time_increment="1",
        breakdowns=HOURLY_BREAKDOWN,
        limit="5000",
    ).json()["data"]
    assert len(rows) == double.account.hourly_insights(END, END).height
    for row in rows:
        assert re.fullmatch(r"\d\d:00:00 - \d\d:59:59", row[HOURLY_BREAKDOWN])
        assert "reach" not in row and "frequency" not in row  # not with hourly breakdowns
        for key in ("spend", "impressions", "clicks", "ctr"):
            assert key not in row or isinstance(row[key], str)
        assert re.fullmatch(r"\d+\.\d\d", row["spend"])
    quiet = [r for r in rows if "clicks" not in r]
    assert quiet and all("ctr" not in r for r in quiet)  # zero metrics are absent
    buying = next(r for r in rows if "action_values" in r)
    purchases = {
        a["action_type"]: a["value"] for a in buying["actions"] if "purchase" in a["action_type"]
    }
    assert set(purchases) == set(PURCHASE_ALIASES) and len(set(purchases.values())) == 1


def test_daily_rows_carry_reach_and_frequency(double):
    rows = _get(
        double,
        "act_1029384756/insights",
        level="adset",
        fields="adset_id,impressions,reach,frequency",
        time_range=json.dumps({"since": str(END), "until": str(END)}),
        time_increment="1",
        limit="500",
    ).json()["data"]
    assert rows and all(int(r["reach"]) > 0 and float(r["frequency"]) >= 1 for r in rows)


def test_error_envelope_and_usage_headers(double):
    double.faults.push({"status": 400, "code": 17, "subcode": 2446079})
    response = _get(double, "act_1029384756/campaigns")
    error = response.json()["error"]
    assert response.status_code == 400
    assert set(error) == {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert (error["code"], error["error_subcode"], error["type"]) == (17, 2446079, "OAuthException")
    buc = json.loads(response.headers["x-business-use-case-usage"])
    assert set(buc["1029384756"][0]) >= {"type", "call_count", "total_cputime", "total_time"}
    assert "acc_id_util_pct" in json.loads(response.headers["x-ad-account-usage"])
    assert "call_count" in json.loads(response.headers["x-app-usage"])
    insights = _get(double, "act_1029384756/insights")
    assert "acc_id_util_pct" in json.loads(insights.headers["x-fb-ads-insights-throttle"])


def test_token_is_checked_and_redacted_in_the_request_log(double):
    wrong = httpx.get(f"{double.url}/v25.0/act_1029384756", params={"access_token": "nope"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 190
    missing = httpx.get(f"{double.url}/v25.0/act_1029384756")
    assert missing.json()["error"]["type"] == "OAuthException"
    ok = httpx.get(f"{double.url}/v25.0/act_1029384756", params={"access_token": TOKEN})
    assert ok.json()["currency"] == "EUR"
    assert double.requests[2]["params"]["access_token"] == "REDACTED"
    assert TOKEN not in json.dumps(double.requests)


def test_paging_next_embeds_the_token_like_meta(double):
    page = _get(double, "act_1029384756/adsets", fields="id", limit="10").json()
    assert len(page["data"]) == 10
    assert "access_token=" in page["paging"]["next"] and page["paging"]["cursors"]["after"]
    last = _get(double, "act_1029384756/adsets", fields="id", limit="100").json()
    assert "next" not in last["paging"] and "cursors" in last["paging"]


def test_async_report_run_over_http(double):
    double.double.async_polls = 1
    params = {
        "level": "adset",
        "fields": "adset_id,spend",
        "time_range": json.dumps({"since": str(END), "until": str(END)}),
        "time_increment": "1",
    }
    run = httpx.post(f"{double.url}/v25.0/act_1029384756/insights", data=params, headers=AUTH)
    run_id = run.json()["report_run_id"]
    early = _get(double, f"{run_id}/insights")
    assert (early.json()["error"]["code"], early.json()["error"]["error_subcode"]) == (
        2601,
        1815107,
    )
    first, second = _get(double, run_id).json(), _get(double, run_id).json()
    assert (first["async_status"], first["async_percent_completion"]) == ("Job Not Started", 0)
    assert (second["async_status"], second["async_percent_completion"]) == ("Job Completed", 100)
    rows = _get(double, f"{run_id}/insights", limit="500").json()["data"]
    assert len(rows) == double.account.hourly_insights(END, END)["adset_id"].n_unique()


def test_faults_drop_delay_and_html(double):
    double.faults.push({"drop": True}, {"delay": 0.5}, {"status": 500, "html": True})
    with pytest.raises(httpx.RemoteProtocolError):
        _get(double, "act_1029384756")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{double.url}/v25.0/act_1029384756", headers=AUTH, timeout=0.1)
    html = _get(double, "act_1029384756")
    assert html.status_code == 500 and "Sorry, something went wrong." in html.text
    assert _get(double, "act_1029384756").status_code == 200


# -- writes close the loop ----------------------------------------------------------------------


def test_budget_writes_change_the_simulated_account(double):
    account = double.account
    source = make_source(double)
    source.write_budget(ADSET, daily_budget=3000)  # 60.00 → 30.00 EUR
    row = account.entities().filter(pl.col("entity_id") == ADSET).row(0, named=True)
    assert row["daily_budget"] == 3000
    assert source.read_budget(ADSET)["daily_budget"] == 3000
    assert json.loads(json.dumps(account.state()))["changes"][-1]["value"] == 3000

    monday = date(2026, 11, 2)  # a new week: the weekly cap (7 × daily budget) starts afresh
    before = source.hourly_insights(END, END).filter(pl.col("adset_id") == ADSET)["spend"].sum()
    account.advance(72)  # Saturday to Monday run on the new budget
    after = source.hourly_insights(monday, monday)
    after = after.filter(pl.col("adset_id") == ADSET)["spend"].sum()
    # Meta may overspend a daily budget by up to 75 % on one day, not more.
    assert before > 45 and 0 < after <= 30.00 * 1.75 and after < before

    source.set_status(ADSET, "PAUSED")
    assert source.read_budget(ADSET)["status"] == "PAUSED"
    assert account.entities().filter(pl.col("entity_id") == ADSET)["status"][0] == "PAUSED"


def test_json_body_writes_and_invalid_values(double):
    url = f"{double.url}/v25.0/{ADSET}"
    ok = httpx.post(url, json={"daily_budget": "7000"}, headers=AUTH)
    assert ok.json() == {"success": True}
    assert double.account.entities().filter(pl.col("entity_id") == ADSET)["daily_budget"][0] == 7000
    for bad in ("70.00", "-1", "abc"):
        answer = httpx.post(url, data={"daily_budget": bad}, headers=AUTH).json()
        assert answer["error"]["code"] == 100, bad
    below = httpx.post(url, data={"daily_budget": "50"}, headers=AUTH).json()
    assert below["error"]["code"] == 100 and "at least 100" in below["error"]["message"]


def test_four_budget_edits_per_hour(double):
    source = make_source(double, Sleeps())
    for amount in (6100, 6200, 6300, 6400):
        source.write_budget(ADSET, daily_budget=amount)
    with pytest.raises(BudgetEditLimitError):
        source.write_budget(ADSET, daily_budget=6500)
    assert double.account.entities().filter(pl.col("entity_id") == ADSET)["daily_budget"][0] == 6400
    source.write_budget("120210000001002", daily_budget=5100)  # another ad set is not blocked
    double.account.advance(1)
    source.write_budget(ADSET, daily_budget=6500)
    assert source.read_budget(ADSET)["daily_budget"] == 6500


def test_cbo_campaign_is_read_and_written(double):
    source = make_source(double)
    entities = source.entities()
    campaign, adsets = _cbo(entities)
    assert (
        adsets and entities.filter(pl.col("entity_id").is_in(adsets))["budget_type"].is_null().all()
    )
    budget = source.read_budget(campaign)
    assert budget["budget_type"] == "daily" and budget["daily_budget"] > 0
    source.write_budget(campaign, daily_budget=budget["daily_budget"] + 1000)
    assert double.account.entities().filter(pl.col("entity_id") == campaign)["daily_budget"][0] == (
        budget["daily_budget"] + 1000
    )
    with pytest.raises(InvalidParameterError) as info:
        source.write_budget(adsets[0], daily_budget=5000)
    assert info.value.subcode == 1885621


def test_lifetime_budget_ad_set_round_trips(double):
    source = make_source(double)
    got = source.entities().filter(pl.col("budget_type") == "lifetime")
    want = double.account.entities().filter(pl.col("budget_type") == "lifetime")
    assert got.height == 1 and got.equals(want)  # end_date survives end_time's local midnight
    adset = got["entity_id"][0]
    source.write_budget(adset, lifetime_budget=got["lifetime_budget"][0] + 10_000)
    assert source.read_budget(adset)["lifetime_budget"] == got["lifetime_budget"][0] + 10_000


def test_paused_campaign_pauses_its_ad_sets(double):
    source = make_source(double)
    source.set_status("120210000000001", "PAUSED")
    entities = source.entities()
    members = entities.filter(pl.col("campaign_id") == "120210000000001")
    assert (members["status"] == "PAUSED").all()
    raw = _get(double, ADSET, fields="status,effective_status").json()
    assert raw == {"id": ADSET, "status": "ACTIVE", "effective_status": "CAMPAIGN_PAUSED"}


def test_learning_stage_after_a_large_change(double):
    source = make_source(double)
    assert not source.learning_stage()["in_learning"].any()
    source.write_budget(ADSET, daily_budget=9000)  # +50 %: a significant edit
    source.write_budget("120210000001002", daily_budget=5200)  # +4 %: not significant
    stage = source.learning_stage()
    learning = stage.filter(pl.col("in_learning"))["entity_id"].to_list()
    assert learning == [ADSET] and set(stage["learning_status"]) == {"LEARNING", "SUCCESS"}
    double.account.advance(121)
    assert not source.learning_stage()["in_learning"].any()


def test_minimum_budgets(double):
    frame = make_source(double).minimum_budgets()
    assert frame.row(0, named=True)["currency"] == "EUR"
    assert frame["min_daily_budget_imp"][0] == 100 and frame["min_daily_budget_low_freq"][0] == 500


# -- a JPY account ------------------------------------------------------------------------------


def test_jpy_account_is_read_and_written():
    account = jpy_account()
    with serve_double(account, token=TOKEN) as double:
        source = make_source(double)
        assert (source.currency, source.account_id) == ("JPY", "act_8811223344")
        entities = source.entities().sort("entity_type", "entity_id")
        assert entities.equals(account.entities().sort("entity_type", "entity_id"))
        assert entities.filter(pl.col("entity_id") == ADSET)["daily_budget"][0] == 9000  # 60 × 150
        raw = _get(double, "act_8811223344/insights", level="adset", fields="spend", limit="500")
        assert all(re.fullmatch(r"\d+", r["spend"]) for r in raw.json()["data"])  # no decimals

        got = source.hourly_insights(END, END)
        want = account.hourly_insights(END, END)
        assert got.height == want.height
        assert got["spend"].sum() == pytest.approx(want["spend"].sum())
        source.write_budget(ADSET, daily_budget=12_345)
        assert source.read_budget(ADSET)["daily_budget"] == 12_345
        assert account.entities().filter(pl.col("entity_id") == ADSET)["daily_budget"][0] == 12_345
        campaign, _ = _cbo(entities)
        source.write_budget(campaign, daily_budget=500_000)
        assert (
            account.entities().filter(pl.col("entity_id") == campaign)["daily_budget"][0] == 500_000
        )
        assert source.minimum_budgets()["currency"][0] == "JPY"


# -- the documented command ---------------------------------------------------------------------


def test_python_m_serves_the_default_scenario():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "budget_pipeline.sources.graph_double",
            "--port",
            "0",
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        answer = httpx.get(f"{url}/v25.0/act_1029384756", headers=AUTH, timeout=5).json()
        assert answer["currency"] == "EUR" and answer["timezone_name"] == "Europe/Berlin"
        assert TOKEN not in line + proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
