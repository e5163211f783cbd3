"""keep_freed_memory: freed arrays are reused instead of faulted in again (glibc, Linux)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from budget_pipeline.defs import process_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# arrays of a few MB built and dropped in turn, as a plan at 10k ad sets does
PROGRAM = """
import resource, sys
import numpy as np
from budget_pipeline.defs.process_memory import keep_freed_memory
print(keep_freed_memory())
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    arrays = [np.ones(600_000 + 1_000 * i) for i in range(8)]
    del arrays
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(env: dict[str, str]) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    kept, faults_kept = _faults(env | {process_memory.OPT_OUT: ""})
    default, faults_default = _faults(env | {process_memory.OPT_OUT: "default"})
    assert kept and not default
    # 160 arrays of ~4.8 MB: ~1,200 pages each when mapped afresh; kept, only the first round's
    assert faults_default > 50_000
    assert faults_kept < faults_default / 5


def test_set_once_per_process(monkeypatch):
    monkeypatch.setattr(process_memory, "_kept", False)
    monkeypatch.delenv(process_memory.OPT_OUT, raising=False)
    assert process_memory.keep_freed_memory() is True
    assert process_memory.keep_freed_memory() is True
