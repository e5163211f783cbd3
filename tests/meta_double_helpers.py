"""Shared set-up for the Marketing API client and Graph API double tests (real HTTP, loopback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from budget_pipeline.sources.graph_double import DoubleHandle
from budget_pipeline.sources.meta_api import GraphApiClient, MetaApiSource, PacePolicy, RetryPolicy
from budget_pipeline.sources.simulated import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    SimulatedAccount,
    load_scenario,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "meta-api"
TOKEN = "EAAB-test-secret-token-5f2c9d"

# Back-off in milliseconds so every retry path runs fast; attempts still bounded.
FAST_RETRY = RetryPolicy(max_attempts=4, initial=0.001, max_wait=0.01, jitter=0.001, max_total=10)
NO_PACING = PacePolicy(slow_at_pct=100.0, max_delay=0.0, max_wait=0.0)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class Sleeps(list):
    """An injectable ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def default_account() -> SimulatedAccount:
    return SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))


def jpy_account() -> SimulatedAccount:
    """The default scenario re-denominated in JPY (minor factor 1), amounts × 150."""
    data = load_scenario(DEFAULT_SCENARIO_PATH).model_dump()
    data |= {"currency": "JPY", "account_id": "act_8811223344", "timezone": "Asia/Tokyo"}
    for pool in data["pools"]:
        pool["floor"] *= 150
        pool["ceiling"] *= 150
    for camp in data["campaigns"]:
        if camp["daily_budget"]:
            camp["daily_budget"] *= 150
        for adset in camp["adsets"]:
            for key in ("daily_budget", "lifetime_budget", "aov", "cpm"):
                if adset.get(key):
                    adset[key] *= 150
    return SimulatedAccount(Scenario.model_validate(data))


def client_kwargs(sleeps: Sleeps | None = None, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retry": FAST_RETRY,
        "pace": NO_PACING,
        "poll_interval": 0.001,
        "timeout": 5.0,
    }
    if sleeps is not None:
        kwargs["sleep"] = sleeps
    return kwargs | overrides


def make_source(double: DoubleHandle, sleeps: Sleeps | None = None, **overrides: Any):
    own = {
        k: overrides.pop(k)
        for k in ("conversion", "async_after_days", "chunk_days", "page_limit")
        if k in overrides
    }
    source = MetaApiSource.from_env(double.env(), **client_kwargs(sleeps, **overrides), **own)
    assert source is not None
    return source


def make_client(
    double: DoubleHandle, *, api_version: str | None = None, **overrides: Any
) -> GraphApiClient:
    return GraphApiClient(
        access_token=double.token,
        graph_url=double.url,
        api_version=api_version or double.api_version,
        **client_kwargs(**overrides),
    )
