"""Handing freed memory back to the operating system."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os


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


def available_memory():
    """Bytes of memory this process can still use (Linux: ``MemAvailable``, capped by the
    address-space limit), or None where the platform does not say."""
    available = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    if available is None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            available = soft if available is None else min(available, soft)
    return available


def check_memory(needed, *, what, advice):
    """Refuse, before the work, a run whose estimated memory ``needed`` (bytes) exceeds what
    is available: a ``MemoryError`` with the estimate, instead of the kernel killing the
    process hours later.

    Examples
    --------
    >>> from sklearn_sfr.utils._memory import check_memory
    >>> check_memory(10**18, what="this run", advice="make it smaller")
    Traceback (most recent call last):
    ...
    MemoryError: this run needs about 1000000000.0 GB of memory and ...
    """
    available = available_memory()
    if available is not None and needed > available:
        raise MemoryError(
            f"{what} needs about {needed / 1e9:.1f} GB of memory and "
            f"{available / 1e9:.1f} GB are available; {advice}"
        )
