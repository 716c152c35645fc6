"""Keeps large temporary buffers from staying resident. Every argon2 password check allocates
its 19 MiB working memory; glibc serves the first such block with mmap and returns it on
free, but then raises its mmap threshold, so later blocks come from the heap and stay
resident for the life of the worker. Fixing the threshold at 1 MiB keeps every large block
on mmap, returned as soon as it is freed. A no-op where the C library is not glibc."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_THRESHOLD_BYTES = 1 << 20


def release_large_buffers() -> bool:
    """Fix glibc's mmap threshold; ``True`` when it took effect."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES))
