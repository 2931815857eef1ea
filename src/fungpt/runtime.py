"""Process settings that matter for XLA:CPU's speed (not math: what the machine does with memory)."""
from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_applied = False


def tune_malloc(mmap_threshold: int = 1 << 30, trim_threshold: int = (1 << 31) - 1) -> bool:
    """Let freed memory be reused inside the process instead of going back to the OS (glibc only).

    XLA:CPU allocates a jitted call's temporaries (~70 MB for the baby GPT's train step) as large blocks.
    glibc serves blocks above its mmap threshold (at most 32 MB by default) with fresh pages from the
    kernel and unmaps them on free, so every call page-faults its whole working set back in: on the
    2-core machine a quarter of the train step's CPU time was kernel time, and the step took 46 ms
    instead of 32.  Raising the mmap threshold (blocks up to `mmap_threshold` bytes come from the heap)
    and the trim threshold (the heap keeps up to `trim_threshold` free bytes) removes that.  The cost:
    the process's resident memory stays near its peak.  Affects allocations made after the call.

    Returns True when applied (Linux with glibc); a no-op returning False elsewhere.  `fungpt train`,
    `fungpt bench` and `fungpt.gpt.train.train` call it.
    """
    global _applied
    if sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) & bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    _applied = _applied or ok
    return ok
