"""Handing freed memory back to the operating system."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util


def release_free_memory():
    """Return memory freed by earlier work to the OS (glibc's ``malloc_trim``).

    glibc keeps freed blocks below its (self-raising) mmap threshold for reuse, so a loop
    that allocates batch-sized buffers holds the allocator's high-water mark rather than
    what it uses. A no-op where glibc is absent.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().malloc_trim(0)


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return _LIBC


_LIBC = None
