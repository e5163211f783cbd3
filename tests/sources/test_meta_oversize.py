"""Numbers too large to be true in a Marketing API page end in the client's PayloadError,
naming the page, row, field and value, over real HTTP against the Graph API double.

Before, a 23-digit ``daily_budget`` or ``impressions`` raised a polars overflow error that named
no field, and ``"spend": "1e400"`` became an infinite spend.
"""

from __future__ import annotations

from datetime import date

import pytest
from meta_double_helpers import TOKEN, default_account, make_source

from budget_pipeline.sources.graph_double import serve_double
from budget_pipeline.sources.meta_api import PayloadError
from budget_pipeline.sources.meta_api.parsing import parse_minimum_budgets

START, END = date(2026, 10, 28), date(2026, 10, 30)
HUGE = "9" * 23


@pytest.fixture
def double():
    with serve_double(default_account(), token=TOKEN) as handle:
        yield handle


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("daily_budget", HUGE, "is above 1,000,000,000,000,000, the largest budget"),
        ("daily_budget", "1000000000000001", "is above 1,000,000,000,000,000"),
    ],
)
def test_an_oversized_budget_names_page_row_field_and_value(double, field, value, says):
    double.faults.push({"match": "/adsets", "corrupt": {"row": 2, "field": field, "value": value}})
    source = make_source(double)
    with pytest.raises(PayloadError) as info:
        source.entities()
    err = info.value
    assert (err.row, err.field, err.value) == (2, field, value)
    assert "/adsets" in err.page
    assert f"row 2, field {field!r}: {value!r} {says}" in str(err)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("impressions", HUGE, "is above 1,000,000,000,000,000, the largest count"),
        ("spend", "1e400", "is above 1,000,000,000,000,000, the largest metric value"),
        ("spend", "9" * 400, "... (402 characters) is above"),
    ],
)
def test_an_oversized_metric_names_page_row_field_and_value(double, field, value, says):
    double.faults.push({"match": "after=", "corrupt": {"row": 3, "field": field, "value": value}})
    source = make_source(double, page_limit=300)
    with pytest.raises(PayloadError) as info:
        source.hourly_insights(START, END)
    err = info.value
    assert (err.row, err.field, err.value) == (3, field, value)
    assert err.page.endswith("page 2") and "/act_1029384756/insights" in err.page
    assert f"row 3 (data[3]), field {field!r}: " in str(err) and says in str(err)


def test_an_oversized_minimum_budget_is_named():
    with pytest.raises(PayloadError) as info:
        parse_minimum_budgets(
            [{"currency": "EUR", "min_daily_budget_imp": "100", "min_daily_budget_low_freq": HUGE}],
            page="GET /act_1/minimum_budgets",
        )
    assert (info.value.field, info.value.value, info.value.row) == (
        "min_daily_budget_low_freq",
        HUGE,
        0,
    )
