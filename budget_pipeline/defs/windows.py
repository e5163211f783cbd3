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


# Rows a chunk of a long pull or merge holds at once (about 80 MB as a polars frame): a
# 60-day backfill at 10k ad sets (14M hourly rows) in one piece peaked at 4.9 GB.
CHUNK_ROWS = 1_000_000


def chunks(start: date, end: date, adsets: int, rows: int | None = None) -> list[tuple[date, date]]:
    """``start``..``end`` (inclusive) as consecutive inclusive date ranges of about ``rows``
    hourly rows each for ``adsets`` ad sets (at least one day each; one range when small)."""
    days = max(1, (rows or CHUNK_ROWS) // max(1, adsets * 24))
    out, first = [], start
    while first <= end:
        last = min(end, first + timedelta(days=days - 1))
        out.append((first, last))
        first = last + timedelta(days=1)
    return out
