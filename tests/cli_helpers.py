"""Run the installed ``budget-pipeline`` command as a user would, in a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``budget-pipeline *args`` in ``tmp_path`` with the warehouse there and no
    BUDGET_PIPELINE_*/META_* settings or DAGSTER_HOME of the calling shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env["BUDGET_PIPELINE_DB"] = str(tmp_path / "warehouse.duckdb")
    return subprocess.run(
        [CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
