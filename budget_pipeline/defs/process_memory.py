"""Keep freed memory in the process for the decision steps (glibc's malloc on Linux).

The decision steps build and drop many arrays of a few megabytes (the response curves' columns
at 10k ad sets are about 4.5 MB each). By default glibc hands the freed top of its heap back to
the kernel and maps large blocks afresh, so the next array of that size is faulted in again,
page by page: about 13,000 minor page faults and 20 to 30 ms of one plan at 10k ad sets.
:func:`keep_freed_memory` raises the two thresholds (blocks up to 32 MB come from the heap,
which is trimmed only past 1 GB free), as ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` would at process start. The process then keeps what it freed for
its next arrays instead of returning it; a decision step runs in its own process under
Dagster's default executor, which ends with the step.

``BUDGET_PIPELINE_MALLOC=default`` leaves the allocator as it is. Elsewhere than glibc
(macOS, musl) nothing changes. polars and DuckDB use their own allocators; this is numpy's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit
TRIM_THRESHOLD = 1 << 30
OPT_OUT = "BUDGET_PIPELINE_MALLOC"

_kept = False


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; whether they are set."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT, "").lower() == "default":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _kept = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and (
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    return _kept
