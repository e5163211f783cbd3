"""Date windows of partitioned runs (a single partition or a whole single-run backfill)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg


@dataclass(frozen=True)
class PullWindow:
    start: date  # first local date pulled (re-pull of recent days included)
    end: date  # last local date, inclusive
    partitions_start: date  # first date of the partitions this run materializes

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def pull_window(
    context: dg.AssetExecutionContext,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    repull_days: int,
) -> PullWindow:
    """The run's partitions, widened back by ``repull_days − 1`` days (never before the first
    partition) so late-attributed conversions of recent days are restated."""
    window = context.partition_time_window
    first = date.fromisoformat(partitions_def.get_first_partition_key())
    start = window.start.date()
    end = window.end.date() - timedelta(days=1)
    return PullWindow(max(first, start - timedelta(days=repull_days - 1)), end, start)
