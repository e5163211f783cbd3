"""freed_memory_kept: inside it freed arrays are reused instead of faulted in again; after it
the process gives its free heap back (glibc, Linux). Each case runs in a child process, as the
allocator's settings are the process's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from budget_pipeline.defs import process_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# arrays of a few MB built and dropped in turn, as a plan at 10k ad sets does; then 480 MB
# held and freed after the block, and the resident size read
PROGRAM = """
import resource
import numpy as np
from budget_pipeline.defs.process_memory import freed_memory_kept

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20

with freed_memory_kept() as kept:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        arrays = [np.ones(600_000 + 1_000 * i) for i in range(8)]
        del arrays
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    held = [np.ones(600_000 + 1_000 * i) for i in range(100)]  # 480 MB from the heap
    del held
    inside = rss_mb()
after = rss_mb()
print(kept, faults, inside, after)
"""


def _run(opt_out: str) -> tuple[bool, int, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        check=True,
        env=env | {process_memory.OPT_OUT: opt_out},
    ).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2]), int(out[3])


def test_freed_arrays_are_reused_inside_and_given_back_after():
    kept, faults_kept, inside, after = _run("")
    default, faults_default, _, after_default = _run("default")
    assert kept and not default
    # 160 arrays of ~4.8 MB: ~1,200 pages each when mapped afresh; kept, only the first round's
    assert faults_default > 50_000
    assert faults_kept < faults_default / 5
    # inside the block the freed 480 MB stay in the process; after it they are given back
    assert inside > 400
    assert after < inside - 300
    assert after < after_default + 100


def test_an_error_in_the_block_still_gives_memory_back(monkeypatch):
    calls = []
    monkeypatch.setattr(process_memory, "keep_freed_memory", lambda: True)
    monkeypatch.setattr(process_memory, "give_back_freed_memory", lambda: calls.append(1))
    with pytest.raises(RuntimeError), process_memory.freed_memory_kept():
        raise RuntimeError("a step failed")
    assert calls == [1]
