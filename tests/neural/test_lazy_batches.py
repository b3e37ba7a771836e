"""HiSSCubeDataset batch reads and CubeDataLoader's chunk-block shuffling."""

import numpy as np
import pytest
import torch

from sklearn_sfr import FusionRegressor
from sklearn_sfr.neural import HiSSCubeDataset
from sklearn_sfr.neural._lazy import ChunkShuffleSampler, CubeDataLoader

FAST = {"max_epochs": 2, "batch_size": 16, "width": 8, "embed_dim": 16, "random_state": 0}


class _CountingDataset(HiSSCubeDataset):
    """Counts file reads, to prove a batch is one read."""

    reads = 0

    def read(self, positions):
        type(self).reads += 1
        return super().read(positions)


class _RecordingDataset(HiSSCubeDataset):
    """Records the positions of every read."""

    def read(self, positions):
        self.__dict__.setdefault("asked", []).append(list(positions))
        return super().read(positions)


def test_getitems_reads_a_batch_at_once(synthetic_cube):
    lazy = _CountingDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    _CountingDataset.reads = 0
    loader = CubeDataLoader(lazy, batch_size=16, shuffle=True)
    batches = list(loader)
    assert _CountingDataset.reads == len(batches) == 5
    X, _ = batches[0]
    assert X["image"].shape == (16, 5, 8, 8) and X["spectrum"].shape == (16, 577)
    item, target = lazy[7]
    np.testing.assert_array_equal(item["spectrum"], lazy.read([7])["spectrum"][0])
    assert target == lazy.y[7] or (np.isnan(target) and np.isnan(lazy.y[7]))


def test_block_ids_follow_the_chunks(synthetic_cube):
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=0, spectrum_zoom=3, flag=None)
    # Image chunks at zoom 0 hold 12 rows, spectrum chunks at level 3 all 80: the larger wins.
    assert lazy.block_rows_ == 80
    assert np.all(lazy.block_ids() == 0)
    small = HiSSCubeDataset(synthetic_cube, image_zoom=0, modalities=("image",), flag=None)
    assert small.block_rows_ == 12
    np.testing.assert_array_equal(small.block_ids(), np.arange(80) // 12)
    assert HiSSCubeDataset(synthetic_cube, block_rows=5, flag=None).block_rows_ == 5
    with pytest.raises(ValueError, match="block_rows"):
        HiSSCubeDataset(synthetic_cube, block_rows=0)


def test_sampler_with_one_block_is_torchs_random_sampler():
    torch.manual_seed(3)
    ours = list(ChunkShuffleSampler(np.zeros(50, int)))
    torch.manual_seed(3)
    theirs = list(torch.utils.data.RandomSampler(range(50)))
    assert ours == theirs


def test_loader_shuffles_by_blocks_also_behind_a_subset(synthetic_cube):
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None, block_rows=8)
    subset = torch.utils.data.Subset(lazy, list(range(0, 80, 2)))  # as skorch's ValidSplit
    loader = CubeDataLoader(subset, batch_size=4, shuffle=True)
    assert isinstance(loader.sampler, ChunkShuffleSampler)
    order = np.array(list(loader.sampler))
    rows = np.asarray(subset.indices)[order]
    assert sorted(order.tolist()) == list(range(40))
    blocks = rows // 8
    assert 1 + np.count_nonzero(blocks[1:] != blocks[:-1]) == 10  # each block read together
    # A batch read through the subset holds the objects of the positions it asked for.
    recorder = _RecordingDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    recorder.block_rows_ = 8
    subset = torch.utils.data.Subset(recorder, list(range(0, 80, 2)))
    X, _ = next(iter(CubeDataLoader(subset, batch_size=4, shuffle=True, read_ahead=2)))
    asked = recorder.asked[0]
    assert set(asked) <= set(subset.indices) and len(asked) == 4
    np.testing.assert_array_equal(X["spectrum"].numpy(), lazy.read(asked)["spectrum"])
    # A dataset without blocks is shuffled as DataLoader shuffles it.
    plain = CubeDataLoader(list(range(10)), batch_size=2, shuffle=True)
    assert isinstance(plain.sampler, torch.utils.data.RandomSampler)


def test_out_of_core_fit_with_small_blocks_and_read_ahead(synthetic_cube):
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, block_rows=8)
    model = FusionRegressor(**FAST, net_kwargs={"iterator_train__read_ahead": 2}).fit(lazy)
    assert model.net_.iterator_train is CubeDataLoader
    pred = model.predict(lazy)
    assert pred.shape == lazy.y.shape and np.isfinite(pred).all()


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_releasing_memory_between_batches_changes_no_batch(
    synthetic_cube, read_ahead, monkeypatch
):
    from sklearn_sfr.neural import _lazy

    calls = []
    monkeypatch.setattr(_lazy, "release_free_memory", lambda: calls.append(1))
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    kept = list(CubeDataLoader(lazy, batch_size=16, read_ahead=read_ahead))
    assert len(calls) == len(kept)  # once after every batch the loop was handed
    calls.clear()
    plain = list(CubeDataLoader(lazy, batch_size=16, read_ahead=read_ahead, release_memory=False))
    assert not calls
    for (a, ya), (b, yb) in zip(kept, plain, strict=True):
        np.testing.assert_array_equal(a["spectrum"], b["spectrum"])
        np.testing.assert_array_equal(ya, yb)
