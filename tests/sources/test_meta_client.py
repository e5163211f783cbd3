"""The Marketing API client and MetaApiSource against the Graph API double over loopback HTTP:
paging, async report runs, retries and their bounds, permanent errors, malformed pages, pacing
on the usage headers, and the token staying out of logs, errors and the double's log."""

from __future__ import annotations

import json
import logging
import time
from datetime import date

import polars as pl
import pytest
from meta_double_helpers import (
    FAST_RETRY,
    TOKEN,
    Sleeps,
    default_account,
    make_client,
    make_source,
)

from budget_pipeline import contracts
from budget_pipeline.sources.base import AdSource
from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.meta_api import (
    DEFAULT_GRAPH_URL,
    AuthError,
    BudgetEditLimitError,
    ConfigError,
    ConversionSpec,
    InvalidParameterError,
    MetaApiSettings,
    MetaApiSource,
    PacePolicy,
    PayloadError,
    PermissionDeniedError,
    RetryPolicy,
    ThrottlingError,
)
from budget_pipeline.sources.meta_api.parsing import spread_daily_reach

START, END = date(2026, 10, 28), date(2026, 10, 30)  # the last three days of the default history


@pytest.fixture
def double():
    with serve_double(default_account(), token=TOKEN) as handle:
        yield handle


# -- configuration ------------------------------------------------------------------------------


def test_from_env_reads_meta_variables():
    assert MetaApiSource.from_env({}) is None
    assert MetaApiSource.from_env({"META_ACCESS_TOKEN": "  "}) is None
    with pytest.raises(ConfigError, match="META_AD_ACCOUNT_ID"):
        MetaApiSource.from_env({"META_ACCESS_TOKEN": TOKEN})
    with pytest.raises(ConfigError, match="META_API_VERSION") as info:
        MetaApiSource.from_env(
            {"META_ACCESS_TOKEN": TOKEN, "META_AD_ACCOUNT_ID": "42", "META_API_VERSION": "25"}
        )
    assert TOKEN not in str(info.value)
    settings = MetaApiSettings.from_env({"META_ACCESS_TOKEN": TOKEN, "META_AD_ACCOUNT_ID": "42"})
    assert settings.ad_account_id == "act_42"
    assert settings.graph_url == DEFAULT_GRAPH_URL == "https://graph.facebook.com"
    assert TOKEN not in repr(settings)
    source = MetaApiSource.from_env(
        {"META_ACCESS_TOKEN": TOKEN, "META_AD_ACCOUNT_ID": "act_42", "META_API_VERSION": "v24.0"}
    )
    assert source.account_id == "act_42" and source.client.api_version == "v24.0"
    assert TOKEN not in repr(source) and TOKEN not in repr(source.client)


def test_source_implements_the_adsource_protocol(double):
    source = make_source(double)
    assert isinstance(source, AdSource)
    assert (source.account_id, source.currency, source.timezone) == (
        "act_1029384756",
        "EUR",
        "Europe/Berlin",
    )


# -- reading ------------------------------------------------------------------------------------


def test_entities_match_the_simulated_account_across_pages(double):
    source = make_source(double, page_limit=7)
    got = source.entities().sort("entity_type", "entity_id")
    want = double.account.entities().sort("entity_type", "entity_id")
    assert got.schema == pl.Schema(contracts.ENTITIES)
    assert got.equals(want)
    listing = [r for r in double.requests if r["path"].endswith(("/campaigns", "/adsets"))]
    assert len(listing) > 4 and sum("after" in r["params"] for r in listing) == len(listing) - 2


def test_hourly_insights_equal_the_account_and_reach_is_spread(double):
    source = make_source(double, page_limit=400)
    got = source.hourly_insights(START, END)
    want = double.account.hourly_insights(START, END)
    assert got.schema == pl.Schema(contracts.INSIGHTS)
    assert got.height == want.height > 1000
    keys = ["date", "hour", "adset_id"]
    joined = want.join(got, on=keys, how="inner", suffix="_api")
    assert joined.height == want.height
    for col in ("spend", "purchase_value", "conversions"):
        assert (joined[col] - joined[f"{col}_api"]).abs().max() < 1e-9, col
    for col in ("impressions", "clicks"):
        assert (joined[col] == joined[f"{col}_api"]).all(), col
    # reach: Meta's daily reach (here the double's daily sum) split over the day's hours.
    daily = want.group_by("adset_id", "date").agg(pl.col("reach").sum())
    spread = got.group_by("adset_id", "date").agg(pl.col("reach").sum())
    assert (
        daily.join(spread, on=["adset_id", "date"], suffix="_api")
        .select((pl.col("reach") == pl.col("reach_api")).all())
        .item()
    )
    assert (got["reach"] <= got["impressions"]).all()
    insight_calls = [r for r in double.requests if r["path"].endswith("/insights")]
    hourly = [r for r in insight_calls if r["params"].get("breakdowns")]
    assert len(hourly) >= 7  # several pages of 400 rows
    assert all("reach" not in r["params"]["fields"].split(",") for r in hourly)
    assert {r["params"]["level"] for r in insight_calls} == {"adset"}


def test_spread_daily_reach_uses_largest_remainder():
    hourly = pl.DataFrame(
        {
            "adset_id": ["a", "a", "a", "b", "b", "c", "c"],
            "date": [date(2026, 1, 1)] * 7,
            "hour": [1, 2, 3, 5, 6, 7, 8],
            "impressions": [1, 1, 1, 3, 1, 0, 0],
        }
    )
    daily = pl.DataFrame(
        {"adset_id": ["a", "b", "c"], "date": [date(2026, 1, 1)] * 3, "reach": [10, 5, 3]}
    )
    out = spread_daily_reach(hourly, daily)
    assert out["reach"].to_list() == [4, 3, 3, 4, 1, 2, 1]
    assert out.columns == ["adset_id", "date", "hour", "impressions", "reach"]


def test_conversion_action_is_configurable_per_campaign(double):
    campaign = "120210000000001"
    spec = ConversionSpec(default="purchase", by_campaign={campaign: "link_click"})
    got = make_source(double, conversion=spec).hourly_insights(END, END)
    mine = got.filter(pl.col("campaign_id") == campaign)
    others = got.filter(pl.col("campaign_id") != campaign)
    assert (mine["conversions"] == mine["clicks"].cast(pl.Float64)).all()
    want = double.account.hourly_insights(END, END).filter(pl.col("campaign_id") != campaign)
    assert others["conversions"].sum() == want["conversions"].sum()


# -- async report runs --------------------------------------------------------------------------


def test_long_ranges_use_async_report_runs(double):
    double.double.async_polls = 2
    source = make_source(double, async_after_days=2)
    got = source.hourly_insights(START, END)
    want = double.account.hourly_insights(START, END)
    assert got.height == want.height
    calls = [(r["method"], r["path"].split("/")[-1]) for r in double.requests]
    posts = [c for c in calls if c[0] == "POST"]
    assert posts == [("POST", "insights"), ("POST", "insights")]  # hourly, then daily reach
    run_ids = {r["path"].split("/")[2] for r in double.requests if r["path"].endswith("/insights")}
    run_ids.discard(double.account.account_id)
    assert len(run_ids) == 2
    polls = [r for r in double.requests if r["path"].split("/")[-1] in run_ids]
    assert len(polls) == 6  # three polls per run: running, running, completed


def test_failed_report_run_is_started_again(double):
    double.faults.push({"async_status": "Job Failed"})
    source = make_source(double, async_after_days=0)
    got = source.insights(END, END, hourly=False)
    assert got.height > 0
    posts = [r for r in double.requests if r["method"] == "POST"]
    assert len(posts) == 2


def test_too_large_sync_request_falls_back_to_async(double):
    double.double.sync_max_days = 1
    source = make_source(double, async_after_days=7)
    got = source.hourly_insights(START, END)
    assert got.height == double.account.hourly_insights(START, END).height
    statuses = [(r["method"], r["status"]) for r in double.requests if "insights" in r["path"]]
    assert ("GET", 500) in statuses and ("POST", 200) in statuses


# -- retries ------------------------------------------------------------------------------------

THROTTLING = [
    (4, None),
    (4, 1504022),
    (4, 1504039),
    (17, None),
    (17, 2446079),
    (32, None),
    (613, 1487742),
    (613, 5044001),
    *((code, None) for code in range(80000, 80015)),
    (80004, 2446079),
]


@pytest.mark.parametrize(("code", "subcode"), THROTTLING)
def test_each_throttling_code_is_retried_to_success(double, code, subcode):
    sleeps = Sleeps()
    double.faults.push({"match": "/insights", "status": 400, "code": code, "subcode": subcode})
    source = make_source(double, sleeps)
    got = source.insights(END, END, hourly=False)
    assert got.height == double.account.hourly_insights(END, END)["adset_id"].n_unique()
    assert [r["status"] for r in double.requests if "insights" in r["path"]] == [400, 200]
    assert source.client.retries == 1
    assert len(sleeps) == 1 and 0 < sleeps[0] <= FAST_RETRY.max_wait


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503, "code": 2, "is_transient": True},
        {"status": 502, "html": True},
        {"drop": True},
        {"delay": 2.5},
    ],
    ids=["500", "503-code-2", "html-502", "dropped-connection", "time-out"],
)
def test_server_errors_drops_and_timeouts_are_retried(double, fault):
    sleeps = Sleeps()
    double.faults.push({"match": "GET /v25.0/act_", **fault})
    source = make_source(double, sleeps, timeout=1.0)
    assert source.read_budget("120210000001001")["daily_budget"] == 6000
    assert source.client.retries == 1 and len(sleeps) == 1


def test_retries_stop_after_the_attempt_bound(double):
    double.faults.push({"status": 400, "code": 17, "subcode": 2446079, "times": 10})
    source = make_source(
        double,
        Sleeps(),
        retry=RetryPolicy(max_attempts=3, initial=0.001, max_wait=0.01, jitter=0.0),
    )
    with pytest.raises(ThrottlingError, match=r"gave up after 3 attempt") as info:
        source.currency  # noqa: B018 - the property calls the API
    assert info.value.code == 17 and info.value.subcode == 2446079
    assert len(double.requests) == 3


def test_retries_stop_when_meta_says_access_returns_too_late(double):
    """BUC header says 47 min to regain access; the total retry budget is 10 s: stop at once."""
    sleeps = Sleeps()
    source = make_source(double, sleeps, pace=PacePolicy(slow_at_pct=75, max_delay=1, max_wait=2))
    double.set_usage(100, regain_minutes=47)
    double.faults.push({"status": 400, "code": 80000})
    with pytest.raises(ThrottlingError, match="access back in 47 min"):
        source.currency  # noqa: B018
    assert len(double.requests) == 1 and sleeps == []


def test_real_backoff_waits_grow_with_jitter(double):
    sleeps = Sleeps()
    double.faults.push({"status": 500, "times": 3})
    policy = RetryPolicy(max_attempts=4, initial=0.5, max_wait=60, jitter=0.1, max_total=30)
    source = make_source(double, sleeps, retry=policy)
    assert source.currency == "EUR"
    assert len(sleeps) == 3
    for n, wait in enumerate(sleeps):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.1


@pytest.mark.parametrize(
    ("code", "expected", "clue"),
    [
        (190, AuthError, "META_ACCESS_TOKEN"),
        (200, PermissionDeniedError, "permission"),
        (10, PermissionDeniedError, "permission"),
        (100, InvalidParameterError, "retrying will not help"),
    ],
)
def test_permanent_errors_stop_with_a_clear_message(double, code, expected, clue):
    sleeps = Sleeps()
    double.faults.push({"status": 400, "code": code, "times": 5})
    source = make_source(double, sleeps)
    with pytest.raises(expected) as info:
        source.entities()
    message = str(info.value)
    assert f"#{code}" in message and clue in message and "fbtrace_id=" in message
    assert "GET /v25.0/act_1029384756" in message
    assert len(double.requests) == 1 and sleeps == []


def test_budget_edit_limit_is_not_retried(double):
    source = make_source(double, Sleeps())
    for amount in (6100, 6200, 6300, 6400):
        source.write_budget("120210000001001", daily_budget=amount)
    with pytest.raises(BudgetEditLimitError, match="4 budget edits") as info:
        source.write_budget("120210000001001", daily_budget=6500)
    assert (info.value.code, info.value.subcode) == (613, 1487632)
    assert info.value.retry_after == 3600
    assert [r["status"] for r in double.requests if r["method"] == "POST"] == [200] * 4 + [400]


def test_wrong_token_is_an_auth_error(double):
    source = MetaApiSource.from_env(
        {**double.env(), "META_ACCESS_TOKEN": "wrong-token-value"}, retry=FAST_RETRY
    )
    with pytest.raises(AuthError, match="#190") as info:
        source.entities()
    assert "wrong-token-value" not in str(info.value) and TOKEN not in str(info.value)


# -- malformed pages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("adset_id", None, "is missing"),
        ("spend", "12,50", "is not a number"),
        ("impressions", "-5", "is negative"),
        ("account_currency", "XXX", "is not a known currency"),
        ("account_currency", "USD", "is not the account currency"),
        ("date_start", "2026-13-01", "is not a date"),
    ],
)
def test_malformed_page_names_page_row_and_field(double, field, value, says):
    double.faults.push({"match": "after=", "corrupt": {"row": 3, "field": field, "value": value}})
    source = make_source(double, page_limit=300)
    with pytest.raises(PayloadError) as info:
        source.hourly_insights(START, END)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.row, err.field, err.value) == (3, field, value)
    assert err.page.endswith("page 2") and "/act_1029384756/insights" in err.page
    message = str(err)
    assert "row 3" in message and repr(field) in message and says in message
    if value is not None:
        assert repr(value) in message


def test_paging_loop_is_refused(double):
    body = {"data": [], "paging": {"next": f"{double.url}/v25.0/act_1029384756/adsets?after=x"}}
    double.faults.push({"body": body, "times": 3})
    with pytest.raises(PayloadError, match="paging loop"):
        list(make_client(double).iter_pages("act_1029384756/adsets"))


# -- pacing on usage headers --------------------------------------------------------------------


def test_usage_headers_slow_the_client_down(double):
    pace = PacePolicy(slow_at_pct=75.0, max_delay=0.5, max_wait=5.0)
    client = make_client(double, pace=pace)
    double.set_usage(95)
    started = time.monotonic()
    for _ in range(3):
        client.get(double.account.account_id)
    slowed = time.monotonic() - started
    # After the first answer says 95 %, each later call first waits (95-75)/(100-75) × 0.5 s.
    assert client.paced_seconds == pytest.approx(0.8)
    assert slowed >= 0.8

    calm = make_client(double, pace=pace)
    double.set_usage(10)
    started = time.monotonic()
    for _ in range(3):
        calm.get(double.account.account_id)
    assert calm.paced_seconds == 0 and time.monotonic() - started < slowed - 0.5


# -- the token ----------------------------------------------------------------------------------


def test_token_never_in_logs_errors_or_the_double_log(double, caplog):
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    source = make_source(double, sleeps, page_limit=100, timeout=1.0)
    errors: list[BaseException] = []
    double.faults.push(
        {"match": "/insights", "status": 400, "code": 17, "subcode": 2446079},
        {"match": "/adsets", "drop": True},
        {"match": "/campaigns", "status": 500, "html": True},
        {"match": "after=", "delay": 2.0},
    )
    source.entities()
    source.hourly_insights(END, END)  # pages follow next URLs that embed the token
    double.faults.push({"status": 400, "code": 190})
    try:
        source.minimum_budgets()
    except AuthError as exc:
        errors.append(exc)
    double.faults.push(
        {"match": "insights", "corrupt": {"row": 0, "field": "spend", "value": TOKEN}}
    )
    try:
        source.hourly_insights(END, END)
    except PayloadError as exc:  # a corrupt page quoting the token as a spend value
        errors.append(exc)
    bad = MetaApiSource.from_env(
        {**double.env(), "META_ACCESS_TOKEN": TOKEN + "x"}, retry=FAST_RETRY
    )
    try:
        bad.entities()
    except AuthError as exc:
        errors.append(exc)

    assert any("next" in json.dumps(r) or "after" in r["params"] for r in double.requests)
    assert [type(e) for e in errors] == [AuthError, PayloadError, AuthError]
    assert "REDACTED" in str(errors[1])
    assert caplog.records, "expected DEBUG records from the client and httpx"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.args)
    for exc in errors:
        assert TOKEN not in str(exc) and TOKEN not in repr(exc)
        assert TOKEN not in str(getattr(exc, "value", ""))
    assert TOKEN not in json.dumps(double.requests)
    assert TOKEN not in repr(source) and TOKEN not in repr(source.client)
