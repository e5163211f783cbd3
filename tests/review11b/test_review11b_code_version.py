"""Review 11b: the kept decisions' code version leaves out code the plan runs.

2e9b334 puts ``code_version()`` (package version + engine/*.py + sql/*.sql) in the decisions'
fingerprint so that "a planner or scorer fix deployed between two evaluation points decides
again at the next tick". But the plan's money arithmetic is not in engine/: the allocator splits
budgets with ``budget_pipeline.money.largest_remainder_split``, every policy reads
``config.pools`` (its derived minimums and caps), the frames go through ``contracts.conform``,
and ``defs/decisions/assets.py`` computes the minimum budgets the plan obeys. A fix to any of
them (same package version) leaves ``code_version()`` unchanged, so the plan made by the old
code is kept until the next evaluation point: the case the commit set out to close.

Real files: the package and its SQL are copied to a temporary folder, one file is edited there,
and ``code_version()`` is computed by a fresh interpreter importing that copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import budget_pipeline

PACKAGE = Path(budget_pipeline.__file__).resolve().parent
SQL = PACKAGE.parent / "sql"


def _code_version(root: Path) -> str:
    code = "from budget_pipeline.defs.evaluation_point import code_version; print(code_version())"
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize(
    "module",
    ["money.py", "config/pools.py", "contracts.py", "defs/decisions/assets.py"],
)
def test_a_fix_to_code_the_plan_runs_decides_again(tmp_path, module):
    root = tmp_path / "checkout"
    shutil.copytree(PACKAGE, root / "budget_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SQL, root / "sql")
    before = _code_version(root)
    edited = root / "budget_pipeline" / module
    edited.write_text(edited.read_text() + "\n# a fix deployed between two evaluation points\n")
    assert _code_version(root) != before, (
        f"{module} changed, code_version() did not: the plan the old code made is kept"
    )
