"""The daily partitions of Insights, in the ad account's timezone.

Defined once, from literal dates: the simulated account's scenario file gives its first day,
its length and its timezone (so the partitions are exactly its history); against the real
API, ``BUDGET_PIPELINE_START_DATE``, ``BUDGET_PIPELINE_TIMEZONE`` and optionally
``BUDGET_PIPELINE_END_DATE`` (the last day; open-ended without it) do. Never
``date.today()`` at load time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from budget_pipeline import settings
from budget_pipeline.sources.simulated.scenario import scenario_summary


def history(env: Mapping[str, str] | None = None) -> tuple[str, str | None, str]:
    """(first day, end (exclusive) or None, timezone) of the account ``env`` describes
    (default ``os.environ``; an account of the accounts file: :meth:`Account.env`)."""
    source = os.environ if env is None else env
    if settings.meta_token_set(env):
        start = source.get("BUDGET_PIPELINE_START_DATE") or "2026-09-01"
        last = source.get("BUDGET_PIPELINE_END_DATE")  # optional last day, inclusive
        end = (date.fromisoformat(last) + timedelta(days=1)).isoformat() if last else None
        return start, end, source.get("BUDGET_PIPELINE_TIMEZONE") or "UTC"
    # Validated like every run validates it: a broken scenario fails the code location with a
    # message naming the field, not a bare KeyError. A file unchanged since it last validated
    # is read from the scenario cache; a big one (64 KB, ~300 ad sets) gives only its three
    # top-level keys here and is validated when a step opens the account, so a launched run
    # process imports this in under 2 s at any size (see scenario_header).
    start, days, timezone = scenario_summary(settings.scenario_path(env))
    # `budget-pipeline simulate` runs the account's clock past its history: its days too.
    end = start + timedelta(days=days + settings.simulate_days(env))
    return start.isoformat(), end.isoformat(), timezone


def daily_partitions_for(env: Mapping[str, str] | None = None) -> dg.DailyPartitionsDefinition:
    """The daily partitions of the account ``env`` describes."""
    start, end, timezone = history(env)
    return dg.DailyPartitionsDefinition(
        start_date=start,
        end_date=end,
        timezone=timezone,
        # Open-ended (the API): today's partition exists while the day runs, for the intraday
        # schedule. A bounded history (the simulated account) ends where it ends.
        end_offset=0 if end else 1,
    )


daily_partitions = daily_partitions_for()
TIMEZONE = daily_partitions.timezone
