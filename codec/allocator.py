"""Keep freed memory in the process instead of handing it back to the kernel (glibc only).

Why: torch takes CPU tensors from malloc, and glibc serves every block above its
mmap threshold (32 MiB at most) with a fresh `mmap` and unmaps it on `free`. A
refine CNN's activation on a Kodak image (32 features × 768 × 512 floats, 48 MiB)
or a training batch's (16 crops of 128 × 128, 32 MiB) is that large, so every
layer of every pass had the kernel map, fault in and zero new pages: a third of
an encode's time and of a training step's was system time (README, "Encoding
and decoding time"; `results/training/README.md`). With mmap off and the heap
never trimmed, freed blocks are reused; the arithmetic, and so every output
byte, is the same.

This changes the whole process, so the library never does it on import: the
`cdcodec` command and the bench's worker processes call `keep_freed_memory()`
first thing; a program using the library may call it too. The environment
variable CDCODEC_KEEP_FREED_MEMORY=0 turns it off (for comparing, or where the
process must give memory back while it runs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt's int takes: no trimming below 2 GiB of free top


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed ones for reuse. True when
    applied (glibc), False where the C library is another or CDCODEC_KEEP_FREED_MEMORY
    is 0 (nothing changes)."""
    if os.environ.get("CDCODEC_KEEP_FREED_MEMORY") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    applied = libc.mallopt(_M_MMAP_MAX, 0) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1 and applied
