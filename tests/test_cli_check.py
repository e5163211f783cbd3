"""``budget-pipeline check``: the preflight as a command, run as the installed script.

Bad input exits with code 2, one ``error:`` paragraph on stderr naming the variable, file,
field and value, and no traceback; nothing is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH


def run_check(env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "budget-pipeline"
    command = [str(script)] if script.exists() else [shutil.which("budget-pipeline") or "x"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BUDGET_PIPELINE_", "META_", "DAGSTER_HOME"))
    }
    return subprocess.run(
        [*command, "check"],
        env=env | env_extra,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_good_inputs_exit_0_and_write_nothing(tmp_path):
    done = run_check({"BUDGET_PIPELINE_DB": str(tmp_path / "data" / "w.duckdb")}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"warehouse: {tmp_path / 'data' / 'w.duckdb'}" in done.stdout
    assert "ok: a run can start" in done.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("duplicate key", "duplicate key 'kill_switch' on line {second} (first on line {first})"),
        ("huge ceiling", "pools[0].ceiling: 6e+24 is above the largest amount"),
        ("warehouse is YAML", "exists but is not a DuckDB database file"),
        ("scenario is a folder", "is a directory, not a file"),
        ("token without account", "META_ACCESS_TOKEN is set but META_AD_ACCOUNT_ID is not"),
    ],
)
def test_bad_input_exits_2_with_one_message_and_no_traceback(tmp_path, case, expected):
    pools = tmp_path / "pools.yaml"
    text = DEFAULT_POOLS_PATH.read_text(encoding="utf-8")
    if case == "duplicate key":
        first = text[: text.index("  kill_switch: false\n")].count("\n") + 1
        text = text.replace("  kill_switch: false\n", "  kill_switch: true\n  kill_switch: false\n")
        expected = expected.format(first=first, second=first + 1)
    if case == "huge ceiling":
        text = text.replace("ceiling: 600", "ceiling: 6000000000000000000000000")
    pools.write_text(text, encoding="utf-8")
    env = {"BUDGET_PIPELINE_POOLS": str(pools), "BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb")}
    if case == "warehouse is YAML":
        env["BUDGET_PIPELINE_DB"] = str(pools)
    if case == "scenario is a folder":
        env["BUDGET_PIPELINE_SCENARIO"] = str(tmp_path)
    if case == "token without account":
        env["META_ACCESS_TOKEN"] = "EAAB-check-secret-0001"
    before = sorted(tmp_path.iterdir())
    done = run_check(env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and expected in done.stderr
    assert "Traceback" not in done.stderr and "EAAB-check-secret" not in done.stderr
    assert done.stdout == ""
    assert sorted(tmp_path.iterdir()) == before
