"""``budget-pipeline rollback`` as a user runs it: a real process, a fresh DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))


def test_an_unknown_plan_id_exits_2_naming_it_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env["BUDGET_PIPELINE_DB"] = str(tmp_path / "warehouse.duckdb")
    done = subprocess.run(
        [CLI, "rollback", "plan-nope"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "FAILED: plan_id 'plan-nope': no such plan in" in done.stderr
    assert "(it holds no plan yet)" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
