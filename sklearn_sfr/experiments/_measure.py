"""Wall time and peak memory of a piece of work, measured while it runs."""

from __future__ import annotations

import gc
import os
import resource
import sys
import threading
import time

from ..utils._memory import release_free_memory

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss():
    """Resident memory of this process in bytes (``/proc``; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:  # not Linux: ru_maxrss is kB on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Measure:
    """Context manager: ``seconds`` and ``peak_memory_mb`` of the block it wraps.

    Memory is sampled from a background thread every ``interval`` seconds; the peak is the
    highest resident memory seen minus the memory when the block started, i.e. what the block
    needed on top of what the process already held (arrays loaded before it do not count).
    Freed memory is handed back to the OS first (glibc), else a block could reuse what an
    earlier one left in the allocator and seem to need nothing.

    Parameters
    ----------
    interval : float, default=0.01
        Seconds between two samples of the resident memory; a shorter interval catches
        shorter peaks at the cost of more sampling.

    Attributes
    ----------
    seconds : float
        Wall-clock seconds the block took, set when it exits.
    peak_memory_mb : float
        Highest resident memory seen during the block, minus the memory when it started,
        in MiB (never negative), set when it exits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.experiments._measure import Measure
    >>> with Measure() as m:
    ...     a = np.ones((2000, 2000))  # 32 MB
    ...     total = a.sum()
    >>> m.seconds > 0, m.peak_memory_mb >= 0
    (True, True)
    """

    def __init__(self, interval=0.01):
        self.interval = interval

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, current_rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        gc.collect()
        release_free_memory()
        self._start_rss = self._peak = current_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, current_rss())
        self.peak_memory_mb = max(self._peak - self._start_rss, 0) / 2**20
        return False
