"""The project's dagster.yaml: one DuckDB writer at a time, and dead runs never keep a slot."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from budget_pipeline.cli import ensure_dagster_home

ROOT = Path(__file__).resolve().parents[1]


def test_the_instance_limits_the_warehouse_pool_and_monitors_runs(tmp_path, monkeypatch):
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.get()
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert instance.global_op_concurrency_default_limit == 1  # the duckdb_write pool


def test_an_older_copy_of_the_projects_settings_is_refreshed_a_users_own_is_kept(
    tmp_path, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    old = (ROOT / "dagster.yaml").read_text().split("run_monitoring:")[0]
    (home / "dagster.yaml").write_text(old)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == (ROOT / "dagster.yaml").read_text()

    own = "telemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(own)
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == own
