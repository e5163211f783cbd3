"""DuckDB has one writer process: a second one fails at once with a message that says why."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from budget_pipeline.defs.resources import Warehouse, WarehouseLockedError

HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_a_second_process_gets_a_clear_error_at_once_not_silent_retries(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.perf_counter()
        with (
            pytest.raises(WarehouseLockedError, match="in use by another process"),
            Warehouse(database=str(path)).connect(),
        ):
            pass
        assert time.perf_counter() - started < 5  # the base resource retries for ~100 s
    finally:
        holder.kill()
        holder.wait()
    with Warehouse(database=str(path)).connect() as con:  # free again: works, tables created
        assert con.execute("SELECT count(*) FROM insights").fetchall() == [(0,)]
