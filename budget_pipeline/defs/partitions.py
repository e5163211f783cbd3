"""The daily partitions of Insights, in the ad account's timezone.

Defined once, from literal dates: the simulated account's scenario file gives its first day,
its length and its timezone (so the partitions are exactly its history); against the real
API, ``BUDGET_PIPELINE_START_DATE``, ``BUDGET_PIPELINE_TIMEZONE`` and optionally
``BUDGET_PIPELINE_END_DATE`` (the last day; open-ended without it) do. Never
``date.today()`` at load time.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import dagster as dg

from budget_pipeline import settings
from budget_pipeline.sources.simulated.scenario import scenario_summary


def _history() -> tuple[str, str | None, str]:
    if settings.meta_token_set():
        start = os.environ.get("BUDGET_PIPELINE_START_DATE", "2026-09-01")
        last = os.environ.get("BUDGET_PIPELINE_END_DATE")  # optional last day, inclusive
        end = (date.fromisoformat(last) + timedelta(days=1)).isoformat() if last else None
        return start, end, os.environ.get("BUDGET_PIPELINE_TIMEZONE", "UTC")
    # Validated like every run validates it: a broken scenario fails the code location with a
    # message naming the field, not a bare KeyError. A file unchanged since it last validated
    # is read from the scenario cache (a launched run process imports this at any size).
    start, days, timezone = scenario_summary(settings.scenario_path())
    # `budget-pipeline simulate` runs the account's clock past its history: its days too.
    end = start + timedelta(days=days + settings.simulate_days())
    return start.isoformat(), end.isoformat(), timezone


_START, _END, TIMEZONE = _history()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_START,
    end_date=_END,
    timezone=TIMEZONE,
    # Open-ended (the API): today's partition exists while the day runs, for the intraday
    # schedule. A bounded history (the simulated account) ends where it ends.
    end_offset=0 if _END else 1,
)
