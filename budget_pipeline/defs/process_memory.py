"""Keep freed memory in the process for the decision steps (glibc's malloc on Linux).

The decision steps build and drop many arrays of a few megabytes (the response curves' columns
at 10k ad sets are about 4.5 MB each). By default glibc hands the freed top of its heap back to
the kernel and maps large blocks afresh, so the next array of that size is faulted in again,
page by page: about 13,000 minor page faults and 20 to 30 ms of one plan at 10k ad sets.
:func:`freed_memory_kept` raises the two thresholds for the length of a decision step
(blocks up to 32 MB come from the heap, which is trimmed only past 1 GB free), as
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would at process start, so the step
reuses what it freed for its next arrays. On leaving, the trim threshold is glibc's default
again and the free heap is given back (``malloc_trim``): the steps run in one process (the
in-process executor, ``budget-pipeline run``), and the ones after keep nothing of it. The mmap
threshold stays at 32 MB: glibc raises its own to the largest block freed, so after these
steps it would be there anyway.

``BUDGET_PIPELINE_MALLOC=default`` leaves the allocator as it is. Elsewhere than glibc
(macOS, musl) nothing changes. polars and DuckDB use their own allocators; this is numpy's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit
TRIM_THRESHOLD = 1 << 30
DEFAULT_TRIM_THRESHOLD = 128 * 1024  # glibc's M_TRIM_THRESHOLD default
OPT_OUT = "BUDGET_PIPELINE_MALLOC"


def _libc():
    """glibc's functions, or None elsewhere (or when opted out)."""
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT, "").lower() == "default":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def keep_freed_memory() -> bool:
    """Raise the thresholds; whether they are set (glibc only)."""
    libc = _libc()
    return libc is not None and (
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )


def give_back_freed_memory() -> bool:
    """glibc's default trim threshold again, and the free heap returned to the kernel."""
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)
    return True


@contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Freed memory kept for the block's next arrays, given back when it ends (even on an
    error); yields whether the allocator could be told."""
    kept = keep_freed_memory()
    try:
        yield kept
    finally:
        if kept:
            give_back_freed_memory()
