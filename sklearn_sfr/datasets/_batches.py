"""Batch order and read-ahead for chunked HDF5 reads.

A HiSS-Cube's dense datasets are stored in chunks of many rows (about 1 MiB each). Reading
rows in a uniformly random order touches a different chunk for almost every row; shuffling
*blocks* of whole chunks instead, and the rows within them, keeps every batch to a few
contiguous reads while the model still sees the objects in a new random order each epoch.
"""

from __future__ import annotations

import queue
import threading

import numpy as np


def block_order(order, block_ids, block_perm):
    """Positions regrouped by block: blocks in a shuffled order, rows as in ``order``.

    Parameters
    ----------
    order : array of int
        A permutation of ``range(len(block_ids))``: the rows in random order.
    block_ids : array of int
        The block (e.g. ``cube row // rows per chunk``) of each position.
    block_perm : array of int
        A permutation of ``range(number of distinct blocks)``: the order of the blocks.

    Returns
    -------
    ndarray of int
        ``order`` stably sorted by the rank of its blocks in ``block_perm``: every block's
        rows come out together, in the order ``order`` gave them. With a single block this is
        ``order`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> block_order(np.array([3, 0, 2, 1]), np.array([0, 0, 1, 1]), np.array([1, 0]))
    array([3, 2, 0, 1])
    """
    order = np.asarray(order)
    blocks, n_blocks = _block_labels(np.asarray(block_ids))
    rank = np.empty(n_blocks, dtype=np.int64)
    rank[np.asarray(block_perm)] = np.arange(n_blocks)
    keys = rank[blocks[order]]
    # A stable sort of small integers is a radix sort in numpy: linear, a few times faster
    # than sorting int64 keys (it runs once per epoch on every row).
    if n_blocks <= np.iinfo(np.uint16).max:
        keys = keys.astype(np.uint16)
    return order[np.argsort(keys, kind="stable")]


def count_blocks(block_ids):
    """Number of distinct blocks in ``block_ids`` (the size of a block permutation).

    Examples
    --------
    >>> count_blocks(np.array([0, 0, 1, 1, 3]))
    3
    """
    return _block_labels(np.asarray(block_ids))[1]


def _block_labels(block_ids):
    """Blocks numbered ``0 .. n_blocks - 1`` and their count. Non-decreasing ids (``row //
    rows_per_chunk``) are numbered by a running count of changes, which needs no sort."""
    if block_ids.size and np.all(block_ids[1:] >= block_ids[:-1]):
        labels = np.empty(block_ids.size, dtype=np.int64)
        labels[0] = 0
        np.cumsum(block_ids[1:] != block_ids[:-1], out=labels[1:])
        return labels, int(labels[-1]) + 1
    uniq, labels = np.unique(block_ids, return_inverse=True)
    return labels.reshape(-1), uniq.size


def batch_positions(n, batch_size, *, block_ids=None, shuffle=False, random_state=None):
    """Positions ``0..n-1`` cut into batches, shuffled by blocks when asked.

    Parameters
    ----------
    n : int
    batch_size : int
    block_ids : array of int, default=None
        Block of each position (None: every position is its own block).
    shuffle : bool, default=False
        False keeps the positions in order (the fastest reads).
    random_state : int, Generator or None, default=None

    Returns
    -------
    list of ndarray of int
    """
    positions = np.arange(n)
    if shuffle:
        rng = np.random.default_rng(random_state)
        order = rng.permutation(n)
        if block_ids is None:
            positions = order
        else:
            positions = block_order(order, block_ids, rng.permutation(count_blocks(block_ids)))
    return [positions[i : i + batch_size] for i in range(0, n, batch_size)]


_DONE = object()


class _Failed:
    def __init__(self, exc):
        self.exc = exc


def read_ahead(iterable, depth):
    """Iterate ``iterable`` in a background thread, keeping up to ``depth`` items ready.

    The reads of the next batches overlap the work on the current one (HDF5 reads and torch
    both release the interpreter for most of their time). An exception in the producer is
    raised in the consumer; leaving the loop early stops the thread.

    Parameters
    ----------
    iterable : iterable
    depth : int
        Items read ahead; 0 iterates in the calling thread.

    Yields
    ------
    The items of ``iterable``, in order.

    Examples
    --------
    >>> list(read_ahead(range(5), depth=2))
    [0, 1, 2, 3, 4]
    """
    if depth <= 0:
        yield from iterable
        return
    ready = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        # Time out now and then so that a consumer that left is noticed.
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterable:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="sklearn-sfr-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
