"""Keep freed memory in the process while time stepping (glibc's ``malloc``).

Every stage of a time step allocates parameter-sized temporaries (``θ + ½hk``, the gradient,
``η ∂C/∂θ``).  glibc serves arrays above its mmap threshold (adaptive, 128 KiB … 32 MiB) from
fresh pages and returns the top of its heap to the system once more than its trim threshold
is free, so every step faults the pages of its temporaries in again: an RK4 step of a
three-layer network with 2·10⁵ parameters took 6.9 ms instead of 2.2 ms
(``benchmarks/allocator.py``).  Raising both thresholds keeps those pages in the process.
Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
"""``mallopt`` parameters (glibc's ``malloc.h``)."""

MMAP_THRESHOLD = 32 << 20
"""Arrays below 32 MiB (glibc's largest mmap threshold) come from the reusable heap."""

RETAINED = 512 << 20
"""Up to 512 MiB of freed heap stays in the process."""


@functools.cache
def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True where it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, RETAINED),
        (M_TOP_PAD, 64 << 20),
    )
    return all(mallopt(option, value) == 1 for option, value in settings)
