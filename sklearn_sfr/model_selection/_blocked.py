"""Blocked cross-validation for sequences of correlated samples (video frames, time series).

Consecutive frames of a video are near-duplicates: a shuffled split puts a test frame's
neighbours in the training set, and the score measures recall of the video more than
generalisation. Holding out contiguous blocks of each sequence keeps neighbours together.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator

from ..utils._sklearn import Interval, validate_params


def _sequences(groups, n_blocks):
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) == 0:
        raise ValueError(f"groups must be a non-empty 1-D array, got shape {groups.shape}")
    names, codes = np.unique(groups, return_inverse=True)
    sizes = np.bincount(codes)
    if sizes.min() < n_blocks:
        short = names[sizes < n_blocks].tolist()
        raise ValueError(
            f"sequences {short} have fewer rows than the {n_blocks} blocks asked for; each "
            "sequence needs at least one row per block"
        )
    return names, codes


@validate_params(
    {"groups": ["array-like"], "n_blocks": [Interval(Integral, 1, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def frame_blocks(groups, n_blocks):
    """Block number of each row: every sequence cut into ``n_blocks`` contiguous runs.

    Rows of one sequence (the same value in ``groups``, e.g. a scene class or a video) are
    taken in their order in the array and cut into ``n_blocks`` runs of near-equal length
    (:func:`numpy.array_split`). Combine the sequence and the block for a group label usable
    with :class:`~sklearn.model_selection.GroupKFold` or
    :class:`~sklearn.model_selection.GroupShuffleSplit`: ``block_ids(groups, n_blocks)``.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Sequence of each row; rows of a sequence must be in temporal order.
    n_blocks : int
        Blocks per sequence.

    Returns
    -------
    blocks : ndarray of shape (n_samples,)
        0 .. n_blocks - 1.

    Examples
    --------
    >>> from sklearn_sfr.model_selection import frame_blocks
    >>> frame_blocks(["a"] * 5 + ["b"] * 4, 2).tolist()
    [0, 0, 0, 1, 1, 0, 0, 1, 1]
    """
    _, codes = _sequences(groups, n_blocks)
    blocks = np.empty(len(codes), dtype=np.int64)
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        for k, part in enumerate(np.array_split(rows, n_blocks)):
            blocks[part] = k
    return blocks


def block_ids(groups, n_blocks):
    """One label per (sequence, block): a ``groups`` argument for scikit-learn's group splitters.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Sequence of each row, rows of a sequence in temporal order.
    n_blocks : int
        Blocks per sequence.

    Returns
    -------
    ids : ndarray of shape (n_samples,)
        Integer label, equal for the rows of one block of one sequence.

    Examples
    --------
    >>> from sklearn_sfr.model_selection import block_ids
    >>> block_ids(["a"] * 4 + ["b"] * 4, 2).tolist()
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    _, codes = _sequences(groups, n_blocks)
    return codes * n_blocks + frame_blocks(groups, n_blocks)


class BlockedFrameSplit(BaseCrossValidator):
    """K-fold cross-validation that holds out one contiguous block of every sequence per fold.

    Each sequence (rows sharing a ``groups`` value, in their order in the data) is cut into
    ``n_splits`` contiguous blocks (:func:`frame_blocks`); fold ``k`` tests on block ``k`` of
    every sequence and trains on the rest, so every class of a per-class sequence appears in
    every test fold, and no block straddles training and test. ``gap`` more rows on each side
    of a test block are left out of training (purging), because the frames just before and
    after a held-out block still resemble it.

    Parameters
    ----------
    n_splits : int, default=5
        Folds, and blocks per sequence.
    gap : int, default=0
        Rows dropped from training on each side of each test block, within its sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.model_selection import BlockedFrameSplit
    >>> groups = np.repeat(["beach", "city"], 6)
    >>> for train, test in BlockedFrameSplit(n_splits=3).split(groups, groups=groups):
    ...     print(test.tolist())
    [0, 1, 6, 7]
    [2, 3, 8, 9]
    [4, 5, 10, 11]
    """

    # Ask for ``groups`` in metadata routing, as scikit-learn's GroupKFold does (what its
    # private GroupsConsumerMixin sets).
    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits=5, *, gap=0):
        # Checked here, as scikit-learn's KFold does: a splitter is not an estimator.
        for name, value, low in (("n_splits", n_splits, 2), ("gap", gap, 0)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.n_splits = n_splits
        self.gap = gap

    def get_n_splits(self, X=None, y=None, groups=None):
        """Get the number of folds, ``n_splits``.

        Parameters
        ----------
        X : object, default=None
            Ignored, for scikit-learn's splitter API.
        y : object, default=None
            Ignored, for scikit-learn's splitter API.
        groups : object, default=None
            Ignored, for scikit-learn's splitter API.

        Returns
        -------
        n_splits : int
            The number of train/test splits :meth:`split` yields.
        """
        return self.n_splits

    def split(self, X, y=None, groups=None):
        """Generate train and test row indices.

        Parameters
        ----------
        X : array-like or SliceDict of n_samples rows
            Only its length is used.
        y : object, default=None
            Ignored, for scikit-learn's splitter API.
        groups : array-like of shape (n_samples,)
            Sequence of each row (e.g. the scene class, or a video id), rows of a sequence
            in temporal order.

        Yields
        ------
        train, test : ndarray
            Row indices.
        """
        if groups is None:
            raise ValueError(
                "BlockedFrameSplit needs groups: the sequence (class or video) of each row"
            )
        groups = np.asarray(groups)
        n = len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} values but X has {n} rows")
        _, codes = _sequences(groups, self.n_splits)
        blocks = frame_blocks(groups, self.n_splits)
        # Position of each row within its sequence, to find the neighbours of a block.
        position = np.empty(n, dtype=np.int64)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            position[rows] = np.arange(len(rows))
        for k in range(self.n_splits):
            test = blocks == k
            excluded = test.copy()
            if self.gap:
                for code in np.unique(codes):
                    in_seq = codes == code
                    pos = position[in_seq & test]
                    near = (position >= pos.min() - self.gap) & (position <= pos.max() + self.gap)
                    excluded |= in_seq & near
            yield np.flatnonzero(~excluded), np.flatnonzero(test)
