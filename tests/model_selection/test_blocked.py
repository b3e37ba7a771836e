"""Blocked splits: contiguous blocks of each sequence, never on both sides of a fold."""

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from sklearn_sfr.model_selection import BlockedFrameSplit, block_ids, frame_blocks


def _sequences(seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(7, 30, 5)
    return np.repeat([f"class{k}" for k in range(5)], sizes)


@pytest.mark.parametrize("gap", [0, 2])
@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_blocks_never_straddle_train_and_test(n_splits, gap):
    groups = _sequences()
    blocks = block_ids(groups, n_splits)
    cv = BlockedFrameSplit(n_splits, gap=gap)
    assert cv.get_n_splits() == n_splits
    tested = []
    for train, test in cv.split(np.zeros(len(groups)), groups=groups):
        assert not set(blocks[train]) & set(blocks[test])
        assert set(groups[test]) == set(groups)  # every sequence in every test fold
        tested.append(test)
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            held = np.isin(rows, test)
            # the test rows of a sequence are one contiguous run of it
            assert np.all(np.diff(np.flatnonzero(held)) == 1)
            if gap:
                first, last = np.flatnonzero(held)[[0, -1]]
                near = rows[max(first - gap, 0) : last + gap + 1]
                assert not np.isin(near, train).any()
    tested = np.concatenate(tested)
    assert sorted(tested) == list(range(len(groups)))  # each row tested exactly once


def test_block_ids_work_with_scikit_learn_group_splitters():
    groups = _sequences(1)
    ids = block_ids(groups, 4)
    # ids are contiguous runs, distinct across sequences
    assert np.all(np.diff(ids) >= 0) and len(np.unique(ids)) == 5 * 4
    np.testing.assert_array_equal(frame_blocks(groups, 4), ids % 4)
    X = np.arange(len(groups), dtype=float)[:, None]
    for train, test in GroupKFold(4).split(X, groups=ids):
        assert not set(ids[train]) & set(ids[test])


def test_blocked_scores_below_random_on_drifting_sequences():
    """Neighbours leak: a tree memorising position scores well on a shuffled split only."""
    from sklearn.model_selection import StratifiedKFold

    groups = np.repeat(["a", "b"], 60)
    y = np.tile(np.repeat([0, 1, 0, 1], 15), 2)  # labels come in runs
    X = np.arange(len(y), dtype=float)[:, None]  # the frame index: pure leakage
    tree = DecisionTreeClassifier(random_state=0)
    random = cross_val_score(tree, X, y, cv=StratifiedKFold(4, shuffle=True, random_state=0))
    blocked = cross_val_score(tree, X, y, cv=BlockedFrameSplit(4), groups=groups)
    assert random.mean() > 0.9 and blocked.mean() < 0.6


def test_clear_errors():
    with pytest.raises(ValueError, match="needs groups"):
        next(BlockedFrameSplit(3).split(np.zeros(9)))
    with pytest.raises(ValueError, match=r"sequences \['b'\] have fewer rows than the 3"):
        next(BlockedFrameSplit(3).split(np.zeros(5), groups=list("aaabb")))
    with pytest.raises(ValueError, match="groups has 4 values but X has 5 rows"):
        next(BlockedFrameSplit(2).split(np.zeros(5), groups=list("aabb")))
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2"):
        BlockedFrameSplit(1)
    with pytest.raises(ValueError, match="gap must be an integer >= 0"):
        BlockedFrameSplit(2, gap=-1)
