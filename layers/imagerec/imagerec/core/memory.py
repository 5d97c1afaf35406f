"""Process-wide allocator tuning for classifying one image after another."""

from __future__ import annotations

import ctypes
import sys
from typing import Final

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
# Blocks up to this size come from the heap and are reused; larger ones (a 40 MP decode) are
# mapped and given back to the kernel as soon as they are freed.
MMAP_THRESHOLD: Final = 32 * 1024 * 1024
# Free memory at the top of the heap is given back only beyond this.
TRIM_THRESHOLD: Final = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Keep the few MB each image's buffers take for the next image; True if it took effect.

    glibc gives freed blocks above 128 KB back to the kernel (and trims the heap's top), so
    each image's decode, crop and resize buffers are mapped, page-faulted and zeroed afresh:
    5–7 ms of system time per 640×480 photo on our 2-core machine, a third of the classify
    (measured with /usr/bin/time; MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ do the same
    from the environment). With fixed thresholds they stay in the heap, reused. The resident
    size then stays near its high-water mark, which is what a serving process sizes for anyway.
    A no-op off glibc (macOS, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a libc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
