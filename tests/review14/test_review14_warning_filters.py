"""Review 14: score_inputs reads the window metrics on a second cursor in a thread, beside
the baselines; both go through insight_sums._query, which silenced DuckDB's "Arrow output
on a DB-API result" warning with warnings.catch_warnings(). That context manager saves and
restores the process-wide filter list, so two threads inside it at once restore each
other's state: the ignore filter was left behind for the whole process (within a few
calls), or a filter removed while the other thread read. The filters must be as they were."""

from __future__ import annotations

import warnings
from datetime import timedelta

from hourly_insights import START, random_hours, warehouse

from budget_pipeline.config.pools import Settings
from budget_pipeline.engine.baselines import score_inputs


def test_reads_on_two_threads_leave_the_warning_filters_as_they_were(tmp_path):
    con = warehouse(tmp_path / "w.duckdb", random_hours(7, 40))
    as_of = START + timedelta(days=38)
    with warnings.catch_warnings():
        before = list(warnings.filters)
        for _ in range(50):  # the threaded path (no 168 h window): leaked within ~20 calls
            windows, baselines = score_inputs(con, [as_of], Settings(), [48], None)
            assert warnings.filters == before
    assert windows.height > 0 and baselines.height > 0
    con.close()
