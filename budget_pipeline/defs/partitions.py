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
import yaml

from budget_pipeline import settings


def _history() -> tuple[str, str | None, str]:
    if settings.meta_token_set():
        start = os.environ.get("BUDGET_PIPELINE_START_DATE", "2026-09-01")
        last = os.environ.get("BUDGET_PIPELINE_END_DATE")  # optional last day, inclusive
        end = (date.fromisoformat(last) + timedelta(days=1)).isoformat() if last else None
        return start, end, os.environ.get("BUDGET_PIPELINE_TIMEZONE", "UTC")
    # Only three literal fields are read here; the scenario is validated when a run loads it.
    raw = yaml.safe_load(settings.scenario_path().read_text(encoding="utf-8"))
    start = date.fromisoformat(str(raw["start"]))
    end = start + timedelta(days=int(raw["days"]))
    return start.isoformat(), end.isoformat(), str(raw["timezone"])


_START, _END, TIMEZONE = _history()

daily_partitions = dg.DailyPartitionsDefinition(start_date=_START, end_date=_END, timezone=TIMEZONE)
