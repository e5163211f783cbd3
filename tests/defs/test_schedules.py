"""The schedules' ticks, evaluated as the daemon would."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from budget_pipeline.defs.partitions import daily_partitions
from budget_pipeline.defs.schedules import daily_cycle_schedule, intraday_30min_schedule

BERLIN = ZoneInfo("Europe/Berlin")


def _tick(schedule, when: datetime):
    context = dg.build_schedule_context(scheduled_execution_time=when)
    return schedule(context)


def test_daily_tick_plans_yesterday_and_intraday_tick_refreshes_today():
    when = datetime(2026, 10, 20, 6, 0, tzinfo=BERLIN)
    assert _tick(daily_cycle_schedule, when).partition_key == "2026-10-19"
    assert _tick(intraday_30min_schedule, when).partition_key == "2026-10-20"


def test_the_local_day_is_the_account_timezones_not_utc():
    # 23:30 UTC on Oct 19 is already Oct 20 in Berlin
    when = datetime(2026, 10, 19, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert _tick(intraday_30min_schedule, when).partition_key == "2026-10-20"


def test_ticks_after_a_bounded_history_take_its_last_day_and_before_it_skip():
    last = daily_partitions.get_last_partition_key()
    late = datetime(2026, 11, 23, 6, 0, tzinfo=BERLIN)
    assert _tick(daily_cycle_schedule, late).partition_key == last
    early = datetime(2026, 8, 1, 6, 0, tzinfo=BERLIN)
    result = _tick(intraday_30min_schedule, early)
    assert isinstance(result, dg.SkipReason) and "2026-08-01" in result.skip_message
