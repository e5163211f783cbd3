"""``budget-pipeline bench``: the scale curve, as a user runs it (a real process), on a tiny
curve (the default curve takes minutes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [CLI, "bench", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def _rows(table_text: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in table_text.splitlines()
        if line.startswith(f"| {first_cell}")
    ]


@pytest.mark.slow
def test_the_curve_prints_every_size_with_ratios_rss_and_the_decision_floor(tmp_path):
    done = _bench(
        tmp_path,
        *("--sizes", "40,80", "--plan-adsets", "3000", "--plan-pools", "30", "--no-naive"),
        *("--simulate-days", "2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    pipeline = [r for r in _rows(out, "") if r[0] in ("40", "80")]
    assert [r[0] for r in pipeline[:2]] == ["40", "80"]
    small, big = pipeline[0], pipeline[1]
    assert int(big[1].replace(",", "")) > 1.8 * int(small[1].replace(",", ""))  # hourly rows
    assert small[2].endswith("(x1.0)")  # ratios to the smallest size, same run
    assert re.fullmatch(r"[\d.]+ \(x[\d.]+\)", big[2])
    assert re.fullmatch(r"[\d,]+ MB", big[-1]) and int(big[-1][:-3].replace(",", "")) > 100
    # the decision steps against the one-pass floor, for both sizes
    steps = pipeline[2:]
    assert [r[0] for r in steps] == ["40", "80"]
    assert all(float(r[7]) > 1 for r in steps)  # steps ÷ floor
    assert all(r[8:] == ["—", "—"] for r in steps)  # no naive reference on request
    # timed as the cycle decided: on the baselines entity_baselines stored at the point
    assert "the scores read the baselines entity_baselines stored at the point, as the " in out
    assert "(computed)" not in out
    assert "Planner alone: 3,000 ad sets in 30 pools" in out
    # simulate's closed loop, as a ratio to the default account's newest-day cycle
    sim = re.search(r"simulate, 2 days of the default scenario .*: ([\d.]+) s = (\d+)x one", out)
    assert sim and float(sim[1]) > 0 and int(sim[2]) >= 1, out[-600:]
    assert not list(tmp_path.iterdir())  # everything in a temporary folder, removed


def test_bad_sizes_exit_2_naming_the_option(tmp_path):
    done = _bench(tmp_path, "--sizes", "40,lots")
    assert done.returncode == 2
    assert "--sizes" in done.stderr and "'40,lots'" in done.stderr
    assert "Traceback" not in done.stderr
