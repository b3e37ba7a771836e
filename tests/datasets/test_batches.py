"""Chunk-aligned batch reads: block shuffling, HiSSCube.iter_batches and the read-ahead thread."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_sfr.datasets import HiSSCube
from sklearn_sfr.datasets._batches import batch_positions, block_order, read_ahead
from tests.conftest import file_state


def _runs(labels):
    """Number of maximal runs of equal consecutive labels."""
    labels = np.asarray(labels)
    return 1 + int(np.count_nonzero(labels[1:] != labels[:-1])) if labels.size else 0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 200), block=st.integers(1, 50), batch=st.integers(1, 64), seed=st.integers(0)
)
def test_batches_cover_every_position_once_and_keep_blocks_together(n, block, batch, seed):
    blocks = np.arange(n) // block
    batches = batch_positions(n, batch, block_ids=blocks, shuffle=True, random_state=seed)
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(n))
    assert all(len(b) == batch for b in batches[:-1]) and 1 <= len(batches[-1]) <= batch
    # Each block's positions come out together: as many runs as blocks.
    assert _runs(blocks[order]) == len(np.unique(blocks))


def test_block_order_with_one_block_is_the_row_order():
    order = np.random.default_rng(0).permutation(30)
    np.testing.assert_array_equal(block_order(order, np.zeros(30, int), np.array([0])), order)


def test_unshuffled_batches_are_in_order():
    batches = batch_positions(10, 4)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffles_differ_by_seed_and_repeat_with_one():
    blocks = np.arange(100) // 10
    a, b, c = (
        np.concatenate(batch_positions(100, 16, block_ids=blocks, shuffle=True, random_state=s))
        for s in (0, 0, 1)
    )
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_iter_batches_read_what_read_images_and_read_spectra_read(synthetic_cube):
    before = file_state(synthetic_cube)
    with HiSSCube(synthetic_cube) as cube:
        # 80 objects: several 12-row chunks at zoom 0 and 56-row chunks at level 0.
        assert cube.rows_per_chunk(("image",), 0) == 12
        assert cube.rows_per_chunk(image_zoom=0, spectrum_level=0) == 56
        images, spectra = cube.read_images(zoom=0), cube.read_spectra(level=0)
        seen = []
        for rows, arrays in cube.iter_batches(
            16, shuffle=True, random_state=0, block_rows=12, read_ahead=2
        ):
            np.testing.assert_array_equal(arrays["image"], images[rows])
            np.testing.assert_array_equal(arrays["spectrum"], spectra[rows])
            seen.append(rows)
        order = np.concatenate(seen)
        assert sorted(order.tolist()) == list(range(80))
        assert not np.array_equal(order, np.arange(80))
        assert _runs(order // 12) == 7  # every 12-row block read together
        # In file order, the batches are consecutive rows.
        plain = list(cube.iter_batches(32, modalities=("spectrum",), spectrum_level=3))
        assert [len(r) for r, _ in plain] == [32, 32, 16]
        np.testing.assert_array_equal(plain[1][0], np.arange(32, 64))
        assert set(plain[0][1]) == {"spectrum"}
        # A subset of rows (e.g. FLAG=0 objects).
        index = np.array([70, 3, 5, 40])
        ((rows, arrays),) = cube.iter_batches(10, modalities=("image",), image_zoom=3, index=index)
        np.testing.assert_array_equal(rows, index)
        np.testing.assert_array_equal(arrays["image"], cube.read_images(index, zoom=3))
    assert file_state(synthetic_cube) == before


def test_iter_batches_errors(synthetic_cube):
    with HiSSCube(synthetic_cube) as cube:
        with pytest.raises(ValueError, match="batch_size"):
            next(cube.iter_batches(0))
        with pytest.raises(ValueError, match="modalities"):
            next(cube.iter_batches(4, modalities=("audio",)))
        with pytest.raises(ValueError, match="image_zoom must be one of"):
            next(cube.iter_batches(4, image_zoom=7))
        with pytest.raises(IndexError, match=r"rows in \[0, 80\)"):
            next(cube.iter_batches(4, index=[0, 80]))


def test_read_ahead_raises_the_producers_error_and_stops_when_left():
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(read_ahead(failing(), depth=2))

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    threads = threading.active_count()
    it = read_ahead(endless(), depth=3)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # the consumer leaves: the producer thread must end
    assert threading.active_count() == threads
    assert len(produced) <= 5 + 3 + 1
