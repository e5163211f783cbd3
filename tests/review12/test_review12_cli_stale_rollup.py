"""Review 12: a stale rollup at the CLI says why, and how to fix it from the CLI.

When ``insights`` holds hours the rollup does not (a row written around the merge),
``entity_baselines`` raises ``StaleRollupError`` naming the dates and counts. Through
``budget-pipeline run`` the user sees only ``FAIL entity_baselines: Execution of step
"entity_baselines" failed.`` and "details in <log>" (exit 1): the progress line prints
Dagster's generic STEP_FAILURE message, not the error's, and the error's remedy
(``budget_pipeline.insights_rollup.refresh(con)``, a Python call to be made inside a
transaction) is not something a CLI user can act on.
"""

from __future__ import annotations

import duckdb
import pytest
from cli_helpers import run_cli


@pytest.mark.slow
def test_a_stale_rollup_names_the_date_on_the_console(tmp_path):
    first = run_cli(tmp_path, "run", "--days", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    # one hour written around the merge, late on the day after the newest: the next
    # evaluation point (midnight after it) reads that date
    day = con.execute(
        "INSERT INTO insights BY NAME SELECT * REPLACE (ts + INTERVAL 24 HOUR AS ts, "
        "date + 1 AS date) FROM insights WHERE ts = (SELECT max(ts) FROM insights) LIMIT 1 "
        "RETURNING date"
    ).fetchone()[0]
    con.close()
    second = run_cli(tmp_path, "run", "--days", "2")
    console = second.stdout + second.stderr
    assert second.returncode != 0
    assert "Traceback" not in console
    log = (tmp_path / ".dagster_home" / "logs" / "budget-pipeline.log").read_text()
    assert f"StaleRollupError: insights_daily is out of step with insights on {day}" in log
    # the reason, with the date, on the console (not only in the log file), and the remedy
    assert "out of step" in console and str(day) in console, console[-1500:]
    assert "budget-pipeline rollup" in console
    fixed = run_cli(tmp_path, "rollup")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "insights_daily rebuilt:" in fixed.stdout
    third = run_cli(tmp_path, "run", "--days", "2")
    assert third.returncode == 0, (third.stdout + third.stderr)[-2000:]


def test_rollup_without_a_warehouse_says_so_and_writes_nothing(tmp_path):
    out = run_cli(tmp_path, "rollup")
    assert out.returncode == 2
    assert "no warehouse at" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()
