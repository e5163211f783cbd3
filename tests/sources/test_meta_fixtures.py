"""Every recorded Marketing API response in tests/fixtures/meta-api, served over loopback
HTTP by the Graph API double (as canned replies) and read with the real client and parsing."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import polars as pl
import pytest
from meta_double_helpers import TOKEN, default_account, fixture, make_client

from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.meta_api import (
    AsyncReportError,
    GraphApiError,
    InvalidParameterError,
    Page,
    PayloadError,
    QueryTooLargeError,
    RetryPolicy,
    ServerError,
    ThrottlingError,
    Usage,
)
from budget_pipeline.sources.meta_api.parsing import (
    RAW_INSIGHTS,
    insight_records,
    parse_insight_pages,
    parse_insights,
)

ONE_ATTEMPT = RetryPolicy(max_attempts=1, initial=0.001, max_wait=0.001, jitter=0.0)


@pytest.fixture
def double():
    with serve_double(default_account(), token=TOKEN) as handle:
        yield handle


def _request(url: str) -> tuple[str, list[tuple[str, str]]]:
    """Path and query (without the recorded token) of a recorded request URL."""
    parts = urlsplit(url)
    params = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
    ]
    return parts.path, params


def _nested_rows(body) -> int:
    """Insights rows in a page counted straight from the JSON, independently of the parser."""
    if "data" in body:
        count = 0
        for item in body["data"]:
            if "insights" in item:
                count += len(item["insights"]["data"])
            elif "date_start" in item:
                count += 1
        return count
    return sum(_nested_rows(v) for v in body.values() if isinstance(v, dict))


def test_ads_daily_insights_page_parses_nested_edges(double):
    rec = fixture("keboola_ads_daily_insights_single_page_v2.9.json")
    path, params = _request(rec["request_url"])
    double.faults.push({"match": f"GET {path}", "body": rec["body"]})
    client = make_client(double, api_version="v2.9")

    body = client.get(path, params)
    page = Page(f"GET {path}", 1, body)
    records = insight_records(body, page=page.label)
    frame = parse_insights(records, page=page.label, level="ad", conversion="link_click")

    assert frame.schema == pl.Schema(RAW_INSIGHTS)
    assert frame.height == _nested_rows(rec["body"]) > 0
    without_edge = [a["id"] for a in rec["body"]["data"] if "insights" not in a]
    assert without_edge and not set(without_edge) & set(frame["ad_id"].to_list())
    first = frame.row(0, named=True)
    raw = rec["body"]["data"][1]["insights"]["data"][0]
    assert first["ad_id"] == raw["ad_id"] == "6077418770070"
    assert first["impressions"] == 3613 and first["reach"] == 3606 and first["clicks"] == 10
    assert first["spend"] == pytest.approx(11.97)
    assert first["conversions"] == 10.0  # link_click picked from the actions array
    assert str(first["date"]) == "2017-09-30"
    # The recorded next URL embeds a token; the client drops it and keeps its cursor.
    next_path, next_params = client._reanchor(rec["body"]["paging"]["next"])
    assert next_path == "/v2.9/act_10152437784203995/ads"
    assert "access_token" not in dict(next_params)
    assert dict(next_params)["after"] == rec["body"]["paging"]["cursors"]["after"]
    assert double.requests[0]["params"] == dict(params)


def test_adsets_paging_stops_where_next_is_missing(double):
    calls = fixture("keboola_adsets_paging_v11.0_recorded.json")["calls"]
    account_id = "act_522606278080331"
    double.faults.push({"match": "GET /v11.0/adsets?", "body": calls[0]["body"]})
    cursors = []
    for call in calls[1:]:
        _, params = _request(call["request_url"])
        cursors.append(dict(params)["after"])
        double.faults.push({"match": f"after={cursors[-1]}", "body": call["body"]})
    client = make_client(double, api_version="v11.0")

    batch = client.get("adsets", {"ids": account_id, "fields": "id,frequency_control_specs"})
    pages = list(client.follow(Page("GET /v11.0/adsets", 1, batch[account_id])))

    assert len(pages) == 4
    assert "next" not in pages[-1].body["paging"] and "cursors" in pages[-1].body["paging"]
    ids = [row["id"] for p in pages for row in p.body["data"]]
    assert len(ids) == len(set(ids)) == 100
    followed = double.requests[1:]
    assert [r["path"] for r in followed] == [f"/v11.0/{account_id}/adsets"] * 3
    assert [r["params"]["after"] for r in followed] == cursors
    assert all("access_token" not in r["params"] for r in followed)
    assert len(double.faults) == 0


def _chains(calls):
    """Consecutive recorded calls linked by paging.next: one chain per listing."""
    chains, current = [], []
    for call in calls:
        if current and current[-1]["body"].get("paging", {}).get("next") == call["request_url"]:
            current.append(call)
        else:
            if current:
                chains.append(current)
            current = [call]
    chains.append(current)
    return chains


def test_campaign_insights_recording_pages_and_batches(double):
    calls = fixture("keboola_campaign_insights_v2.9_recorded.json")["calls"]
    client = make_client(double, api_version="v2.9")
    batch_ids = "act_10152562141153995,act_10152437784203995"
    pages, served = [], 0
    for chain in _chains(calls):
        path, params = _request(chain[0]["request_url"])
        if path == "/v2.9/campaigns":  # a multi-id read, recorded without its query
            params = [("ids", batch_ids), ("fields", "insights{campaign_id,actions}")]
        for call in chain:
            double.faults.push({"match": f"GET {path}", "body": call["body"]})
        got = list(client.iter_pages(path, params))
        assert len(got) == len(chain)  # stopped exactly where `next` was missing
        assert "next" not in got[-1].body.get("paging", {})
        pages += got
        served += len(chain)
    assert served == len(calls) == 33

    frame = parse_insight_pages(
        [(p.label, insight_records(p.body, page=p.label)) for p in pages],
        level="campaign",
        conversion="link_click",
    )
    assert frame.height == sum(_nested_rows(c["body"]) for c in calls) == 25
    assert frame["campaign_id"].str.contains(r"^\d+$").all()
    # Rows without spend/impressions (not requested, or no activity) read as zero, not null.
    assert frame["spend"].null_count() == 0 and frame["impressions"].null_count() == 0
    assert (frame["conversions"] > 0).sum() > 0


def test_async_report_flow_and_purchase_aliases(double):
    calls = fixture("keboola_async_report_v10.0_recorded.json")["calls"]
    run_id = calls[0]["body"]["report_run_id"]
    double.faults.push(
        {"match": "POST /v10.0/act_522606278080331/insights", "body": calls[0]["body"]},
        {"match": f"GET /v10.0/{run_id}?", "body": calls[1]["body"]},
        {"match": f"GET /v10.0/{run_id}/insights", "body": calls[2]["body"]},
    )
    client = make_client(double, api_version="v10.0")
    params = {
        "level": "account",
        "fields": "account_id,campaign_id,actions",
        "date_preset": "last_3d",
        "time_increment": "1",
        "action_breakdowns": "action_reaction",
    }
    pages = list(client.run_async_report("act_522606278080331", params))
    assert [r["method"] + " " + r["path"] for r in double.requests] == [
        "POST /v10.0/act_522606278080331/insights",
        f"GET /v10.0/{run_id}",
        f"GET /v10.0/{run_id}/insights",
    ]
    assert double.requests[0]["params"]["date_preset"] == "last_3d"
    assert calls[1]["body"]["async_percent_completion"] == 100  # a JSON number, not a string

    raw_rows = calls[2]["body"]["data"]
    aliases = ("purchase", "omni_purchase", "offsite_conversion.fb_pixel_purchase")
    summed_aliases = [
        sum(
            Decimal(a["value"])
            for a in row["actions"]
            if "purchase" in a["action_type"] and set(a) == {"action_type", "value"}
        )
        for row in raw_rows
    ]
    for alias in aliases:
        records = insight_records(pages[0].body, page=pages[0].label)
        frame = parse_insights(records, page=pages[0].label, level="account", conversion=alias)
        expected = [
            float(next(a["value"] for a in row["actions"] if a["action_type"] == alias))
            for row in raw_rows
        ]
        assert frame["conversions"].to_list() == expected
        assert all(e < float(s) for e, s in zip(expected, summed_aliases, strict=True))
    # A broken-down action (post_reaction by action_reaction) reads its plain total.
    frame = parse_insights(
        insight_records(pages[0].body, page="p"),
        page="p",
        level="account",
        conversion="post_reaction",
    )
    assert frame["conversions"][0] == 8.0


ERROR_EXPECTATIONS = {
    "reduce-data-response": QueryTooLargeError,
    "error-400-response": QueryTooLargeError,
    "cannot-include-error": InvalidParameterError,
    "unknown-error-response": ServerError,
    "something-went-wrong-error-response": ServerError,
    "unexpected-error-response": ServerError,
    "media-posted-before-error-response": InvalidParameterError,
}
ISSUE_EXPECTATIONS = {
    416: ThrottlingError,  # 17
    97: ThrottlingError,  # 4
    8773: ThrottlingError,  # 80004 / 2446079
    1094: AsyncReportError,  # 2601 / 1815107
    136: QueryTooLargeError,  # 2 / 1504018 "use async jobs"
    5: InvalidParameterError,  # 100 / 33
    628: QueryTooLargeError,  # 1 "reduce the amount of data"
}


def _error_cases():
    for entry in fixture("keboola_request_test_error_bodies.json"):
        if entry["name"] != "success-response":
            yield pytest.param(
                entry["http_status"], entry["body"], ERROR_EXPECTATIONS[entry["name"]],
                id=entry["name"],
            )  # fmt: skip
    for entry in fixture("graph_api_errors_from_issue_threads.json")["errors"]:
        if "body" in entry:
            number = int(entry["url"].rstrip("/").rsplit("/", 1)[1])
            yield pytest.param(
                entry["http_status"] or 400, entry["body"], ISSUE_EXPECTATIONS[number],
                id=f"thread-{number}",
            )  # fmt: skip


@pytest.mark.parametrize(("status", "body", "expected"), list(_error_cases()))
def test_each_error_body_maps_to_its_class(double, status, body, expected):
    double.faults.push({"status": status, "body": body})
    client = make_client(double, retry=ONE_ATTEMPT)
    with pytest.raises(GraphApiError) as info:
        client.get(double.account.account_id)
    err = info.value
    assert type(err) is expected
    assert err.http_status == status
    assert err.transient == (expected in (ThrottlingError, ServerError, AsyncReportError))
    if isinstance(body, dict):
        assert err.code == body["error"]["code"]
        assert err.subcode == body["error"].get("error_subcode")
        assert err.fbtrace_id == body["error"].get("fbtrace_id")
        assert body["error"]["message"][:40] in str(err)
    else:
        assert "HTML page" in str(err) and "Sorry, something went wrong." in str(err)


def test_html_500_is_transient_and_retried_to_success(double):
    html = next(
        e["body"]
        for e in fixture("keboola_request_test_error_bodies.json")
        if e["body_kind"].startswith("non-json")
    )
    double.faults.push({"status": 500, "body": html, "times": 2})
    client = make_client(double)
    assert client.get(double.account.account_id)["currency"] == "EUR"
    assert [r["status"] for r in double.requests] == [500, 500, 200]
    assert client.retries == 2


def test_success_response_fixture_is_an_empty_object(double):
    entry = next(
        e
        for e in fixture("keboola_request_test_error_bodies.json")
        if e["name"] == "success-response"
    )
    double.faults.push({"body": entry["body"]})
    assert make_client(double).get("act_1") == {}
    with pytest.raises(PayloadError, match="data"):
        insight_records({"data": "nope"}, page="p")


def test_rate_limit_header_samples_are_read(double):
    samples = fixture("graph_api_errors_from_issue_threads.json")["rate_limit_headers_seen"]
    client = make_client(double)
    double.set_usage(0)  # the double's own headers say 0 %, the sample decides
    for sample in samples:
        double.faults.push({"delay": 0.0, "headers": {sample["header"]: sample["value"]}})
        client.get(double.account.account_id)
        expected = Usage.from_headers({sample["header"].lower(): sample["value"]}).utilisation
        assert client.usage.utilisation == pytest.approx(expected)
    assert (
        Usage.from_headers({"x-fb-ads-insights-throttle": samples[0]["value"]}).utilisation == 100
    )
    assert Usage.from_headers({"x-app-usage": samples[2]["value"]}).utilisation == 28
