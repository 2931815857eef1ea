"""fungpt.runtime.tune_malloc: after it, a large block freed and allocated again is served from memory
the process already has, instead of fresh kernel pages (counted as minor page faults)."""
import subprocess
import sys

import pytest

_PROBE = """
import ctypes, resource, sys
if sys.argv[1] == "tuned":
    from fungpt.runtime import tune_malloc
    assert tune_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
size = 64 << 20  # above glibc's largest default mmap threshold (32 MB), like XLA's step temporaries
def cycle():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)  # touch every page
    libc.free(p)
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_tune_malloc_reuses_freed_blocks():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    plain, tuned = faults("plain"), faults("tuned")
    pages = 10 * (64 << 20) // 4096  # what ten fresh 64 MB blocks cost in 4 KiB pages
    assert plain > pages // 2  # untuned glibc maps every block afresh (the cost tune_malloc removes)
    assert tuned < pages // 20
