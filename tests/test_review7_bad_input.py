"""Review of issue 7 §6: bad input to `budget-pipeline run` / `check` that still gives a
traceback, exit code 1, or a partial write. Fails on 45c7321."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))
LIVE_POOLS = ROOT / "budget_pipeline/examples/pools_live_demo.yaml"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env["BUDGET_PIPELINE_DB"] = str(tmp_path / "w.duckdb")
    return env | extra


def _run(tmp_path, env, *args):
    return subprocess.run(
        [CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("case", ["file", "bad_yaml"])
def test_a_bad_dagster_home_is_named_without_a_traceback(tmp_path, case):
    if case == "file":
        home = tmp_path / "home_is_a_file"
        home.write_text("")
    else:
        home = tmp_path / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("concurrency:\n  pools: [oops\n")
    result = _run(tmp_path, _env(tmp_path, DAGSTER_HOME=str(home)), "run", "--days", "3")
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "╭" not in out, out[-1500:]
    assert result.returncode == 2 and "DAGSTER_HOME" in out, out[-1500:]


def test_a_missing_meta_rule_file_is_refused_before_anything_runs(tmp_path):
    pools = tmp_path / "pools_rule.yaml"
    pools.write_text(
        LIVE_POOLS.read_text().replace(
            '    members: {campaign_names: ["TS | *"]}\n',
            '    members: {campaign_names: ["TS | *"]}\n'
            "    policy: meta_rule\n    meta_rule: nowhere.json\n",
        )
    )
    env = _env(tmp_path, BUDGET_PIPELINE_POOLS=str(pools))
    check = _run(tmp_path, env, "check")
    assert check.returncode == 2 and "nowhere.json" in check.stderr, check.stdout
    run = _run(tmp_path, env, "run", "--days", "3")
    assert run.returncode == 2 and "nowhere.json" in run.stderr, run.stdout + run.stderr
    assert not (tmp_path / "w.duckdb").exists()  # nothing written
